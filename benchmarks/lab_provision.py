"""Wall time of site.yml on lab clusters: first and second run on 3 nodes, 1 vs 3 workers.

Needs root (it boots labs). Run: sudo -E uv run python benchmarks/lab_provision.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from kubani.lab.lab import Lab

ANSIBLE = Path(__file__).resolve().parents[1] / "ansible"


def site(lab: Lab) -> float:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(lab.folder / "facts"),
    }
    started = time.perf_counter()
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "-i",
            str(lab.inventory),
            "playbooks/site.yml",
        ],
        cwd=ANSIBLE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(result.stdout[-2000:])
    return elapsed


def measure(name: str, nodes: int) -> dict[str, float]:
    lab = Lab(name)
    lab.down()
    try:
        started = time.perf_counter()
        lab.up(nodes=nodes, control_planes=1)
        boot = time.perf_counter() - started
        first = site(lab)
        second = site(lab)
        return {
            "nodes": nodes,
            "lab_up_s": round(boot, 1),
            "first_site_s": round(first, 1),
            "second_site_s": round(second, 1),
        }
    finally:
        lab.down()


def main() -> None:
    rows = [measure("bench-2", 2), measure("bench-4", 4)]
    print(json.dumps(rows, indent=2))
    for row in rows:
        print(
            f"{row['nodes'] - 1} worker(s): lab up {row['lab_up_s']} s, first site.yml "
            f"{row['first_site_s']} s, second {row['second_site_s']} s",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
