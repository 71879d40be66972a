"""Running the project's playbooks: their events (a callback of ours), per-host progress."""
