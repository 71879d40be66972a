"""Text from outside never steers the terminal or breaks the rendering: escape sequences in
API messages, tailnet names and pod logs are written out; Rich markup in them stays text."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st
from rich.console import Console
from rich.text import Text

from kubani.cluster.rows import flux_row
from kubani.errors import KubaniError
from kubani.printable import printable, printable_keeping_colours
from tests.conftest import run_cli

HOSTILE = "ok [/] [bold]x \x1bc\x1b]52;c;ZXZpbA==\x07\x1b[2J\r\x9b"


def test_control_characters_are_written_out_and_text_is_kept() -> None:
    assert printable("plain text, ünïcode ✓") == "plain text, ünïcode ✓"
    assert printable("two\tcolumns\nand lines") == "two\tcolumns\nand lines"
    assert printable(HOSTILE) == "ok [/] [bold]x \\x1bc\\x1b]52;c;ZXZpbA==\\x07\\x1b[2J\\x0d\\x9b"


def test_colours_can_stay_for_a_log_and_nothing_else_does() -> None:
    line = "\x1b[32mINFO\x1b[0m ready \x1bc"
    kept = printable_keeping_colours(line)
    assert kept == "\x1b[32mINFO\x1b[0m ready \\x1bc"
    shown = Text.from_ansi(kept)
    assert shown.plain == "INFO ready \\x1bc" and shown.spans


@given(st.text())
def test_nothing_a_terminal_obeys_survives(text: str) -> None:
    for made in (printable(text), Text.from_ansi(printable_keeping_colours(text)).plain):
        assert not any((ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) <= 0x9F for c in made)


def test_error_lines_quote_tools_safely() -> None:
    error = KubaniError("cannot list nodes", f"the API said: {HOSTILE}", "retry")
    assert "\x1b" not in error.line() and "\\x1bc" in error.line() and "[/]" in error.line()


def _rendered(renderable: object) -> str:
    out = io.StringIO()
    Console(file=out, width=300, force_terminal=True, color_system=None).print(renderable)
    return out.getvalue()


def test_the_cli_status_shows_a_hostile_flux_message_as_text() -> None:
    from kubani.cli.status import render
    from kubani.cluster.status import ClusterStatus, FluxObject

    flux = FluxObject("Kustomization", "flux-system", "apps", "False", "Failed", HOSTILE, None)
    shown = _rendered(render(ClusterStatus("lab", None, f"down: {HOSTILE}", None, flux=[flux])))
    assert "\x1b" not in shown and "ok [/] [bold]x \\x1bc" in shown


def test_table_rows_for_the_tui_carry_no_control_characters() -> None:
    row = flux_row(
        "Kustomization",
        {"metadata": {"name": "apps\x1b[2J", "namespace": "flux-system"},
         "status": {"conditions": [{"type": "Ready", "status": "False", "reason": "x",
                                    "message": HOSTILE}]}},
    )  # fmt: skip
    assert not any("\x1b" in cell for cell in row.cells)
    assert any("[/]" in cell for cell in row.cells)


def test_one_line_messages_and_gitops_findings_are_written_safely(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    (tree / "cm\x1b[2J[red].yaml").write_text(
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\ndata: [1]\n"
    )
    result = run_cli("gitops", "validate", "--path", tree, timeout=120)
    assert result.code == 1 and "\x1b" not in result.stderr, result.stderr
    assert "cm\\x1b[2J[red].yaml" in result.stderr
    missing = run_cli("-i", tmp_path / "gone\x1b[2J.yml", "validate", timeout=60)
    assert missing.code == 1 and "\x1b" not in missing.stderr and "\\x1b[2J" in missing.stderr


def test_inventory_problems_quote_the_file_safely(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts.yml"
    hosts.write_text(
        'all:\n  children:\n    control_plane:\n      hosts:\n        "cp\\x1b[2J[/]1": {}\n'
    )
    result = run_cli("-i", hosts, "validate", timeout=60)
    assert result.code == 1 and "\x1b" not in result.stdout + result.stderr
    assert "hosts.cp\\x1b[2J[/]1" in result.stdout


def test_flux_objects_are_described_safely() -> None:
    from kubani.cluster.flux_health import describe
    from kubani.cluster.status import FluxObject

    said = describe(FluxObject("Kustomization", "ns", "a", "False", "R", "bad \x1bc [/]", None))
    assert said == "Kustomization ns/a: False (R: bad \\x1bc [/])"
