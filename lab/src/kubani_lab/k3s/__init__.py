"""K3s stand-in: ``k3s server``/``agent`` with a Kubernetes API that real clients accept.

No containers run and there is no pod network: see ``kubani_lab/README.md``.
"""
