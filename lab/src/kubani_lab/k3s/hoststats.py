"""This machine's real CPU, memory and disk figures, for node capacity and stats/summary."""

from __future__ import annotations

import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any


def meminfo() -> dict[str, int]:
    values = {}
    for line in Path("/proc/meminfo").read_text().splitlines():
        key, _, rest = line.partition(":")
        values[key] = int(rest.split()[0]) * 1024
    return values


def cpu_seconds() -> float:
    fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    ticks = os.sysconf("SC_CLK_TCK")
    busy = sum(int(f) for i, f in enumerate(fields[:8]) if i not in (3, 4))
    return busy / ticks


def disk(path: str = "/") -> tuple[int, int, int, int, int]:
    stat = os.statvfs(path)
    capacity = stat.f_blocks * stat.f_frsize
    available = stat.f_bavail * stat.f_frsize
    used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
    return capacity, available, used, stat.f_files, stat.f_ffree


def os_image() -> str:
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


class Sampler:
    """CPU use in nano-cores between two calls, as the kubelet reports it."""

    def __init__(self) -> None:
        self.last = (time.monotonic(), cpu_seconds())

    def usage_nano_cores(self) -> int:
        now, seconds = time.monotonic(), cpu_seconds()
        elapsed = max(now - self.last[0], 1e-3)
        used = max(seconds - self.last[1], 0.0)
        self.last = (now, seconds)
        return int(used / elapsed * 1e9)


def stats_summary(node_name: str, sampler: Sampler, started: str) -> dict[str, Any]:
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    memory = meminfo()
    capacity, available, used, inodes, inodes_free = disk("/")
    working = memory["MemTotal"] - memory.get("MemAvailable", memory.get("MemFree", 0))
    return {
        "node": {
            "nodeName": node_name,
            "systemContainers": [],
            "startTime": started,
            "cpu": {
                "time": stamp,
                "usageNanoCores": sampler.usage_nano_cores(),
                "usageCoreNanoSeconds": int(cpu_seconds() * 1e9),
            },
            "memory": {
                "time": stamp,
                "availableBytes": memory.get("MemAvailable", 0),
                "usageBytes": working,
                "workingSetBytes": working,
                "rssBytes": working,
                "pageFaults": 0,
                "majorPageFaults": 0,
            },
            "fs": {
                "time": stamp,
                "availableBytes": available,
                "capacityBytes": capacity,
                "usedBytes": used,
                "inodesFree": inodes_free,
                "inodes": inodes,
                "inodesUsed": inodes - inodes_free,
            },
            "runtime": {
                "imageFs": {
                    "time": stamp,
                    "availableBytes": available,
                    "capacityBytes": capacity,
                    "usedBytes": 0,
                    "inodesFree": inodes_free,
                    "inodes": inodes,
                    "inodesUsed": 0,
                }
            },
            "rlimit": {
                "time": stamp,
                "maxpid": 4194304,
                "curproc": sum(1 for p in Path("/proc").iterdir() if p.name.isdigit()),
            },
        },
        "pods": [],
    }
