"""Text from outside (API messages, tailnet names, pod logs, file contents) made safe to
show on a terminal.

A terminal obeys the control characters in what it is sent: an escape sequence in a Flux
message or a machine's name could clear the screen, retitle the window, reset the terminal
or write to the clipboard (OSC 52). Rich and Textual pass them through, so anything from
outside is shown with each control character written out as ``\\xNN`` instead.
"""

from __future__ import annotations

import re

# C0 controls but tab and newline, DEL, and C1 controls (which some terminals also obey).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
# Select Graphic Rendition (colours, bold): the one kind of sequence a log may keep.
_SGR = re.compile(r"\x1b\[[0-9;:]*m")


def _escaped(match: re.Match[str]) -> str:
    return f"\\x{ord(match.group()):02x}"


def printable(text: str) -> str:
    """``text`` with every control character but tab and newline written as ``\\xNN``."""
    if text.isprintable():
        return text
    return _CONTROL.sub(_escaped, text)


def printable_keeping_colours(text: str) -> str:
    """Like ``printable``, but colour and style sequences (SGR) stay, for a reader that
    turns them into styles (Rich's ``Text.from_ansi``), as ``kubectl logs`` shows them."""
    if text.isprintable():
        return text
    kept = _SGR.findall(text)
    pieces = _SGR.split(text)
    return "".join(
        printable(piece) + (kept[index] if index < len(kept) else "")
        for index, piece in enumerate(pieces)
    )
