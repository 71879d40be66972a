"""The cluster seen whole: the inventory, the tailnet and the Kubernetes API together."""
