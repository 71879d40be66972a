"""Running the project's playbooks: ansible-runner events, per-host progress, hints."""
