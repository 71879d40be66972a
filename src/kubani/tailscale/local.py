"""The local ``tailscale`` CLI: ``tailscale status --json`` and its failure modes."""

from __future__ import annotations

import codecs
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from kubani import jsonsafe, userfiles
from kubani.tailscale.parse import TailscaleError

ENV_BINARY = "KUBANI_TAILSCALE_BIN"

_BACKEND_FIXES = {
    "NeedsLogin": ("this machine is logged out of the tailnet", "run `sudo tailscale up`"),
    "Stopped": ("tailscale is stopped (`tailscale down` was run)", "run `sudo tailscale up`"),
    "NeedsMachineAuth": (
        "this machine waits for an admin to approve it",
        "approve it in the admin console (Machines page), then retry",
    ),
    "NoState": ("tailscaled has not started its backend yet", "retry in a few seconds"),
    "Starting": ("tailscaled is still connecting", "retry in a few seconds"),
}


def tailscale_binary(explicit: str | None = None) -> str:
    return explicit or os.environ.get(ENV_BINARY) or "tailscale"


def check_backend(status: dict[str, Any], where: str = "this machine") -> None:
    """Raise with the fix when the daemon is not Running."""
    if "BackendState" not in status:
        if status.get("Self") or status.get("Peer"):
            return  # a trimmed or hand-made status: its devices are all it tells
        raise TailscaleError(
            f"no tailnet in the status of {where}",
            "it has no BackendState, Self or Peer: it is not `tailscale status --json` output",
            "save the output of `tailscale status --json` itself",
        )
    state = status.get("BackendState")
    state = state if isinstance(state, str) else ""
    if state == "Running":
        return
    why, fix = _BACKEND_FIXES.get(state, (f"its state is {state or 'unknown'}", None))
    if state == "NeedsLogin" and status.get("AuthURL"):
        fix = f"run `sudo tailscale up` or open {status['AuthURL']}"
    raise TailscaleError(f"tailscale on {where} is not connected (BackendState {state})", why, fix)


def read_status(
    binary: str | None = None, status_file: Path | None = None, timeout: float = 10.0
) -> dict[str, Any]:
    """``tailscale status --json`` from the CLI, or from a saved file."""
    if status_file is not None:
        try:
            raw = userfiles.read_bytes(status_file)
        except OSError as exc:
            raise TailscaleError(
                f"cannot read {status_file}", exc.strerror or str(exc), "check the path"
            ) from exc
        return _decode(_text(raw, str(status_file)), str(status_file))
    command = tailscale_binary(binary)
    resolved = shutil.which(command)
    if resolved is None:
        raise TailscaleError(
            "tailscale CLI not found",
            f"{command!r} is not an executable on PATH",
            f"install Tailscale on this machine, or point --tailscale-bin / ${ENV_BINARY} at it",
        )
    try:
        result = subprocess.run(
            [resolved, "status", "--json"],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise TailscaleError(
            "tailscale status did not answer",
            f"no reply within {timeout:.0f} s",
            "check that tailscaled is healthy: `sudo systemctl status tailscaled`",
        ) from None
    if result.returncode != 0:
        message = (result.stderr or result.stdout).strip().splitlines()
        detail = message[0] if message else f"exit code {result.returncode}"
        if "tailscaled" in detail and ("running" in detail or "connect" in detail):
            raise TailscaleError(
                "tailscaled is not running", detail, "start it: `sudo systemctl start tailscaled`"
            )
        raise TailscaleError("tailscale status failed", detail, None)
    return _decode(result.stdout, "tailscale status --json")


# What a saved status file may start with: Windows' PowerShell writes UTF-16 with a BOM
# (`tailscale status --json > status.json`), editors add a UTF-8 BOM.
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _text(raw: bytes, source: str) -> str:
    encoding = "utf-8"
    for bom, name in _BOMS:
        if raw.startswith(bom):
            raw, encoding = raw[len(bom) :], name
            break
    else:
        if len(raw) >= 2 and raw[0] == 0 and raw[1] != 0:
            encoding = "utf-16-be"  # UTF-16 without a BOM: '{' is 00 7B or 7B 00
        elif len(raw) >= 2 and raw[1] == 0 and raw[0] != 0:
            encoding = "utf-16-le"
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as exc:
        raise TailscaleError(
            f"cannot read {source}",
            f"it is not text in UTF-8 or UTF-16 ({exc.reason} at byte {exc.start})",
            "save `tailscale status --json` again, as UTF-8",
        ) from None


def _decode(text: str, source: str) -> dict[str, Any]:
    try:
        data = jsonsafe.loads(text)
    except json.JSONDecodeError as exc:
        raise TailscaleError(
            f"cannot parse {source}", f"not JSON: {exc.msg} at line {exc.lineno}", None
        ) from exc
    if not isinstance(data, dict):
        raise TailscaleError(f"cannot parse {source}", "the JSON is not an object", None)
    return data
