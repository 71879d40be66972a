"""``cluster-tui``: the Textual view of the cluster."""
