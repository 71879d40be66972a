"""``nvidia-smi`` stand-in: NVIDIA's output formats for the GPUs a lab node pretends to have.

The GPUs come from ``/etc/kubani-lab/gpus.json`` (written by ``lab up --gpu-nodes``):
``[{"name": "NVIDIA GeForce RTX 4090", "memory_mib": 24564, "uuid": "GPU-..."}]`` plus the
driver and CUDA versions. Simulates ``-L``, ``--query-gpu=...`` with ``--format=csv[,noheader]
[,nounits]`` and the default summary table, and ``--query-compute-apps=pid,process_name,
used_memory,gpu_uuid``: the processes that use the GPU are, in this simulation, the processes
started with ``KUBANI_LAB_GPU_APP=1`` in their environment (read from ``/proc``, so as root,
as the real tool sees every process). Does not simulate clocks, MIG or power.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

GPUS_FILE = Path(os.environ.get("KUBANI_LAB_GPUS", "/etc/kubani-lab/gpus.json"))
PROC = Path(os.environ.get("KUBANI_LAB_PROC", "/proc"))
GPU_APP_MARK = b"KUBANI_LAB_GPU_APP=1"

Field = Callable[[dict[str, Any], int, dict[str, Any]], "str | tuple[str, str]"]

_FIELDS: dict[str, Field] = {
    "name": lambda g, i, d: g["name"],
    "gpu_name": lambda g, i, d: g["name"],
    "index": lambda g, i, d: str(i),
    "uuid": lambda g, i, d: g["uuid"],
    "gpu_uuid": lambda g, i, d: g["uuid"],
    "memory.total": lambda g, i, d: (str(g["memory_mib"]), "MiB"),
    "memory.used": lambda g, i, d: ("0", "MiB"),
    "memory.free": lambda g, i, d: (str(g["memory_mib"]), "MiB"),
    "driver_version": lambda g, i, d: d["driver_version"],
    "count": lambda g, i, d: str(len(d["gpus"])),
    "pci.bus_id": lambda g, i, d: f"00000000:{i + 1:02X}:00.0",
    "compute_cap": lambda g, i, d: g.get("compute_cap", "8.9"),
    "utilization.gpu": lambda g, i, d: ("0", "%"),
}


def _load() -> dict[str, Any]:
    try:
        return dict(json.loads(GPUS_FILE.read_text()))
    except (OSError, ValueError):
        print(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running."
        )
        raise SystemExit(9) from None


def _query(data: dict[str, Any], fields: list[str], fmt: str) -> int:
    options = set(fmt.split(","))
    units = "nounits" not in options
    if "noheader" not in options:
        header = []
        for field in fields:
            sample = _FIELDS[field](data["gpus"][0], 0, data) if data["gpus"] else ""
            unit = f" [{sample[1]}]" if isinstance(sample, tuple) and units else ""
            header.append(field + unit)
        print(", ".join(header))
    for index, gpu in enumerate(data["gpus"]):
        cells = []
        for field in fields:
            value = _FIELDS[field](gpu, index, data)
            if isinstance(value, tuple):
                value = f"{value[0]} {value[1]}" if units else value[0]
            cells.append(value)
        print(", ".join(cells))
    return 0


def _gpu_apps() -> list[tuple[int, str]]:
    """(pid, executable) of each process that, in this simulation, uses the GPU."""
    found = []
    for entry in PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if GPU_APP_MARK not in (entry / "environ").read_bytes().split(b"\0"):
                continue
            command = (entry / "cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
        except OSError:
            continue  # gone, or not ours to read
        found.append((int(entry.name), command))
    return sorted(found)


_APP_FIELDS: dict[str, Callable[[int, str, dict[str, Any]], str]] = {
    "pid": lambda pid, name, gpu: str(pid),
    "process_name": lambda pid, name, gpu: name,
    "used_memory": lambda pid, name, gpu: "512 MiB",
    "gpu_uuid": lambda pid, name, gpu: gpu["uuid"],
}


def _query_apps(data: dict[str, Any], fields: list[str], fmt: str) -> int:
    unknown = [f for f in fields if f not in _APP_FIELDS]
    if unknown:
        print(f'Field "{unknown[0]}" is not a valid field to query.')
        return 2
    options = set(fmt.split(","))
    if "noheader" not in options:
        print(", ".join(f + (" [MiB]" if f == "used_memory" else "") for f in fields))
    gpu = data["gpus"][0] if data["gpus"] else {"uuid": ""}
    for pid, name in _gpu_apps():
        cells = [_APP_FIELDS[f](pid, name, gpu) for f in fields]
        if "nounits" in options:
            cells = [c.removesuffix(" MiB") for c in cells]
        print(", ".join(cells))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    data = _load()
    if "-L" in args or "--list-gpus" in args:
        for index, gpu in enumerate(data["gpus"]):
            print(f"GPU {index}: {gpu['name']} (UUID: {gpu['uuid']})")
        return 0
    fmt = next((a.split("=", 1)[1] for a in args if a.startswith("--format=")), "csv")
    apps = next((a.split("=", 1)[1] for a in args if a.startswith("--query-compute-apps=")), None)
    if apps is not None:
        return _query_apps(data, [f.strip() for f in apps.split(",")], fmt)
    query = next((a.split("=", 1)[1] for a in args if a.startswith("--query-gpu=")), None)
    if query is not None:
        fields = [f.strip() for f in query.split(",")]
        unknown = [f for f in fields if f not in _FIELDS]
        if unknown:
            print(f'Field "{unknown[0]}" is not a valid field to query.')
            return 2
        return _query(data, fields, fmt)
    print(
        f"| NVIDIA-SMI {data['driver_version']}   Driver Version: {data['driver_version']}"
        f"   CUDA Version: {data['cuda_version']} |"
    )
    for index, gpu in enumerate(data["gpus"]):
        print(f"|   {index}  {gpu['name']:<30} | 0MiB / {gpu['memory_mib']}MiB |")
    return 0
