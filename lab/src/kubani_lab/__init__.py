"""The local lab: real Debian hosts under systemd-nspawn on a simulated tailnet.

Modules here that run inside lab nodes (``tailnet``, ``standins``, ``k3s``) use only the
standard library plus Debian's python3-yaml and python3-cryptography.
"""
