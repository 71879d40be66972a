"""Write docs/TROUBLESHOOTING.md from the sources: every failure a role reports with a
"Fix:" and every error `cluster-mgr` raises with a fix, in one place.

    uv run python scripts/troubleshooting.py          # rewrite the file
    uv run python scripts/troubleshooting.py --check  # exit 1 when it is out of date

A unit test runs the check, so the guide cannot drift from the messages.
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "docs" / "TROUBLESHOOTING.md"
_JINJA = re.compile(r"\{\{-?\s*(.*?)\s*-?\}\}", re.S)
_STATEMENT = re.compile(r"\{%.*?%\}", re.S)
_KEY = re.compile(r"\[\s*['\"]([\w-]+)['\"]\s*\]")


def _plain(text: str) -> str:
    """Jinja expressions shown as placeholders, whitespace folded, pipes escaped."""

    def placeholder(match: re.Match[str]) -> str:
        expression = match.group(1).split("|")[0].strip()
        if expression[:1] in ("'", '"'):
            return ""  # punctuation between a loop's items
        key = _KEY.search(expression)
        if expression.startswith("ansible_facts") and key:
            return f"<{key.group(1)}>"
        name = expression.split(".")[0].split("(")[0].split("[")[0].strip(" ()'\"")
        return "<host>" if name == "inventory_hostname" else f"<{name or 'value'}>"

    text = _STATEMENT.sub("", _JINJA.sub(placeholder, text))
    folded = " ".join(text.split())
    return folded.replace("|", "\\|")


def _tasks(node: object) -> list[dict[str, object]]:
    found: list[dict[str, object]] = []
    if isinstance(node, list):
        for item in node:
            found += _tasks(item)
    elif isinstance(node, dict):
        found.append(node)
        for key in ("block", "rescue", "always"):
            found += _tasks(node.get(key))
    return found


def role_failures() -> list[tuple[str, str, str, str]]:
    """(role, task, what, fix) for every task message with a "Fix:"."""
    rows = []
    for path in sorted((ROOT / "ansible" / "roles").glob("*/tasks/*.yml")):
        role = path.parts[-3]
        for task in _tasks(yaml.safe_load(path.read_text()) or []):
            for module in ("ansible.builtin.fail", "ansible.builtin.assert"):
                arguments = task.get(module)
                if not isinstance(arguments, dict):
                    continue
                message = str(arguments.get("msg") or arguments.get("fail_msg") or "")
                if "Fix:" not in message:
                    continue
                what, _, fix = message.partition("Fix:")
                rows.append((role, str(task.get("name", "")), _plain(what), _plain(fix)))
    return rows


def _literal(node: ast.expr) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        parts = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                parts.append("<…>")
        return "".join(parts)
    return None


def cli_errors() -> list[tuple[str, str, str]]:
    """(module, what, fix) for every KubaniError raised with a written fix."""
    rows = []
    for path in sorted((ROOT / "src" / "kubani").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", "") == "KubaniError"):
                continue
            if len(node.args) < 3:
                continue
            what, fix = _literal(node.args[0]), _literal(node.args[2])
            if what and fix:
                module = path.relative_to(ROOT / "src").with_suffix("").as_posix()
                rows.append((module.replace("/", "."), _plain(what), _plain(fix)))
    return sorted(set(rows))


def render() -> str:
    lines = [
        "# Troubleshooting",
        "",
        "Every failure Kubani reports with a fix, in one place. Generated from the sources by",
        "`scripts/troubleshooting.py`; do not edit by hand. `<host>` and `<…>` stand for the",
        "node or value the message names when it is printed.",
        "",
        "## While provisioning (the Ansible roles)",
        "",
        "A failed run names the node and the step (role and task); the step's message ends",
        "with what to do.",
        "",
        "| role | step | what happened | fix |",
        "|---|---|---|---|",
    ]
    lines += [f"| `{r}` | {t} | {w} | {f} |" for r, t, w, f in role_failures()]
    lines += [
        "",
        "## cluster-mgr",
        "",
        "Errors are printed as `Error: what: why` followed by the fix (`--debug` adds the",
        "traceback).",
        "",
        "| error | fix | raised in |",
        "|---|---|---|",
    ]
    lines += [f"| {w} | {f} | `{m}` |" for m, w, f in cli_errors()]
    return "\n".join(lines) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if not TARGET.is_file() or TARGET.read_text() != text:
            print(f"{TARGET} is out of date: run scripts/troubleshooting.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
