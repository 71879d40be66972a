"""Widgets of the live view: the status and summary lines, and how a table draws its cells
(states coloured, meters as pictures beside their figures)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from rich.cells import cell_len
from rich.text import Text
from textual.widgets import Static

from kubani.cluster.overview import ClusterOverview
from kubani.cluster.rows import Column, Draw, Meter
from kubani.vocabulary import NODE_STATE_STYLES

_STATE_STYLES = {
    **NODE_STATE_STYLES,
    "True": "green",
    "False": "bold red",
    "Unknown": "yellow",
    "Suspended": "yellow",
    "Healthy": "green",
    "Degraded": "yellow",
    "Down": "bold red",
    "Warning": "bold yellow",
    "offline": "bold red",
    "not on tailnet": "bold red",
}
# How full a resource may be before it is drawn as busy, then as hot.
BUSY_AT, HOT_AT = 0.75, 0.90
_SPARKS = "▁▂▃▄▅▆▇█"
TREND_WIDTH = 6  # samples a CPU trend shows
BAR_WIDTH = 5
MAX_BLOCKS = 8  # GPUs drawn one block each up to this many
# A flexible column is never cut narrower than this.
MIN_FLEXIBLE = 12


def cell_style(value: str) -> str:
    if value in _STATE_STYLES:
        return _STATE_STYLES[value]
    if value.startswith("NotReady") or value.startswith("relay:"):
        return "yellow"
    if value.startswith("Ready,"):
        return "yellow"
    return ""


def level_style(fraction: float) -> str:
    if fraction >= HOT_AT:
        return "bold red"
    return "yellow" if fraction >= BUSY_AT else "green"


def sparkline(samples: Sequence[float], width: int = TREND_WIDTH) -> str:
    """The last ``width`` samples (fractions) as block heights; fewer samples than the width
    are padded with the oldest, so a steady value draws the same at any history length."""
    recent = list(samples[-width:])
    if not recent:
        return " " * width
    recent = [recent[0]] * (width - len(recent)) + recent
    top = len(_SPARKS) - 1
    return "".join(_SPARKS[round(max(0.0, min(1.0, s)) * top)] for s in recent)


def draw_cell(column: Column, text: str, meter: Meter | None) -> Text:
    """A cell as the view shows it: states coloured, meters drawn beside their figures."""
    if meter is None or column.draw is Draw.TEXT:
        return Text(text, style=cell_style(text), no_wrap=True, overflow="ellipsis")
    style = level_style(meter.fraction)
    if column.draw is Draw.TREND:
        picture = sparkline(meter.history or (meter.fraction,))
    elif column.draw is Draw.BAR:
        filled = round(meter.fraction * BAR_WIDTH)
        picture = "█" * filled + "░" * (BAR_WIDTH - filled)
    elif column.draw is Draw.BLOCKS and 0 < meter.total <= MAX_BLOCKS:
        used = round(meter.used)
        picture = "■" * used + "□" * (round(meter.total) - used)
    else:
        return Text(text, style=style, no_wrap=True, overflow="ellipsis")
    cell = Text(no_wrap=True, overflow="ellipsis")
    cell.append(picture, style)
    cell.append(" ")
    cell.append(text, style)
    return cell


def drawn_width(column: Column, text: str, meter: Meter | None) -> int:
    """How wide ``draw_cell`` draws a cell, without drawing it."""
    width = cell_len(text)
    if meter is None or column.draw in (Draw.TEXT, Draw.LEVEL):
        return width
    if column.draw is Draw.TREND:
        return TREND_WIDTH + 1 + width
    if column.draw is Draw.BAR:
        return BAR_WIDTH + 1 + width
    if 0 < meter.total <= MAX_BLOCKS:
        return round(meter.total) + 1 + width
    return width


class StatusBar(Static):
    """Cluster, endpoint, connection state and the age of the data."""

    def show(
        self,
        cluster: str,
        server: str,
        state: str,
        updated: datetime | None,
        now: datetime,
        note: str = "",
    ) -> None:
        styles = {"live": "bold green", "connecting": "bold yellow", "stale": "bold red"}
        text = Text.assemble(
            (f" {cluster} ", "bold reverse"),
            f"  {server}  ",
            (f" {state.upper()} ", styles.get(state, "bold")),
        )
        if updated is not None:
            seconds = int((now - updated).total_seconds())
            text.append(f"  updated {updated:%H:%M:%S}")
            if state == "stale":
                text.append(f" ({seconds}s ago)", style="bold red")
        if note:
            text.append(f"  {note}", style="dim")
        self.update(text)


class SummaryLine(Static):
    """The cluster at a glance: nodes Ready, pods Running, Flux objects Ready, warnings."""

    def show(self, summary: ClusterOverview) -> None:
        def part(label: str, good: int, total: int, word: str) -> Text:
            style = "green" if good == total else "bold yellow" if good else "bold red"
            if total == 0:
                style = "dim"
            return Text.assemble(f"{label} ", (f"{good}/{total}", style), f" {word}")

        warnings = summary.warnings_recent
        self.update(
            Text(" ").join(
                [
                    Text(""),
                    part("Nodes", summary.nodes_ready, summary.nodes_total, "Ready"),
                    Text("·", style="dim"),
                    part("Pods", summary.pods_running, summary.pods_total, "Running"),
                    Text("·", style="dim"),
                    part("Flux", summary.flux_ready, summary.flux_total, "Ready"),
                    Text("·", style="dim"),
                    Text.assemble(
                        "Warnings ",
                        (str(warnings), "bold yellow" if warnings else "green"),
                        f" in {summary.window_minutes} min",
                    ),
                ]
            )
        )
