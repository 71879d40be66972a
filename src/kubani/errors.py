"""Errors that carry what failed, why, and how to fix it: one line for the user."""

from __future__ import annotations


class KubaniError(Exception):
    """A failure the user can act on. ``str()`` is the one-line message."""

    exit_code = 1

    def __init__(self, what: str, why: str, fix: str | None = None) -> None:
        self.what = what
        self.why = why
        self.fix = fix
        super().__init__(self.line())

    def line(self) -> str:
        from kubani.printable import printable  # what and why often quote what a tool said

        text = f"{self.what}: {self.why}"
        return printable(f"{text} (fix: {self.fix})" if self.fix else text)
