"""Kubernetes access behind a small async interface (lightkube), shared by CLI and TUI."""
