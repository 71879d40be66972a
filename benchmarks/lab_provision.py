"""Wall time and controller CPU of site.yml on lab clusters: the first run and a run that
changes nothing, on 2 and 8 nodes (1 control plane), with the playbooks' strategy and with
Ansible's plain linear one for comparison.

Needs root (it boots labs). Run:

    sudo -E uv run python benchmarks/lab_provision.py                  # 2 and 8 nodes, both
    sudo -E uv run python benchmarks/lab_provision.py --nodes 3 --strategy kubani_linear

One JSON document on stdout (a row per lab size and strategy), a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from kubani.lab.lab import Lab

ANSIBLE = Path(__file__).resolve().parents[1] / "ansible"
STRATEGIES = ("kubani_linear", "linear")


def site(lab: Lab, strategy: str) -> dict[str, Any]:
    """One site.yml run: wall seconds, the controller's CPU seconds (ansible-playbook and
    every process it started on this machine: ssh, forks), and the recap's changed count."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(lab.folder / "facts"),
        "ANSIBLE_STRATEGY": strategy,
    }
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
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
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(result.stdout[-3000:])
    changed = sum(
        int(part.split("=", 1)[1])
        for line in result.stdout.splitlines()
        for part in line.split()
        if part.startswith("changed=")
    )
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"wall_s": round(elapsed, 1), "controller_cpu_s": round(cpu, 1), "changed": changed}


def measure(nodes: int, strategy: str) -> dict[str, Any]:
    lab = Lab(f"bench-{nodes}")
    lab.down()
    try:
        started = time.perf_counter()
        lab.up(nodes=nodes, control_planes=1)
        boot = time.perf_counter() - started
        first = site(lab, strategy)
        noop = site(lab, strategy)
        return {
            "nodes": nodes,
            "strategy": strategy,
            "lab_up_s": round(boot, 1),
            "first": first,
            "noop": noop,
            "noop_over_first": round(noop["wall_s"] / first["wall_s"], 2),
            "noop_controller_cpu_per_node_s": round(noop["controller_cpu_s"] / nodes, 2),
        }
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--strategy", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    options = parser.parse_args()
    rows = [measure(n, s) for s in options.strategy for n in options.nodes]
    print(json.dumps(rows, indent=2))
    print(
        f"{'nodes':>5} {'strategy':<14} {'first s':>8} {'no-op s':>8} {'ratio':>6} "
        f"{'first CPU':>9} {'no-op CPU/node':>14} {'changed':>7}",
        file=sys.stderr,
    )
    for row in rows:
        print(
            f"{row['nodes']:>5} {row['strategy']:<14} {row['first']['wall_s']:>8} "
            f"{row['noop']['wall_s']:>8} {row['noop_over_first']:>6} "
            f"{row['first']['controller_cpu_s']:>9} {row['noop_controller_cpu_per_node_s']:>14} "
            f"{row['noop']['changed']:>7}",
            file=sys.stderr,
        )
    by_strategy = {(r["strategy"], r["nodes"]): r["first"]["wall_s"] for r in rows}
    for strategy in options.strategy:
        sizes = sorted(n for s, n in by_strategy if s == strategy)
        if len(sizes) >= 2:
            ratio = by_strategy[(strategy, sizes[-1])] / by_strategy[(strategy, sizes[0])]
            print(
                f"{strategy}: first run on {sizes[-1]} nodes / on {sizes[0]} nodes: {ratio:.2f}",
                file=sys.stderr,
            )


if __name__ == "__main__":
    main()
