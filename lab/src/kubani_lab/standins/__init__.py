"""Stand-ins for binaries the lab cannot download (tailscale, k3s, nvidia-smi).

They answer in the real formats from the lab's state; see ``../README.md`` for exactly what
each one simulates and what it does not.
"""
