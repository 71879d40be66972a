"""``cluster-mgr``: Typer commands over the data layers. Heavy imports live inside commands."""
