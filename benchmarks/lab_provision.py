"""Wall time and controller CPU of site.yml on lab clusters: the first run, a run that
changes nothing (it ends after reading each node's record) and a run that checks every
step anyway (kubani_full_run), on 2 and 8 nodes (1 control plane), with the playbooks'
strategy and with Ansible's plain linear one for comparison; optionally cluster-mgr
provision's overhead over a bare ansible-playbook.

Needs root (it boots labs). Run:

    sudo -E uv run python benchmarks/lab_provision.py                  # 2 and 8 nodes, both
    sudo -E uv run python benchmarks/lab_provision.py --nodes 3 --strategy kubani_linear
    sudo -E uv run python benchmarks/lab_provision.py --nodes 3 --strategy kubani_linear \
        --overhead-runs 3
    sudo -E uv run python benchmarks/lab_provision.py --nodes 2 8 --strategy kubani_linear \
        --tasks 10      # also each run's 10 slowest tasks and its host-task count

One JSON document on stdout (a row per lab size and strategy), a table on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from kubani.vocabulary import FULL_RUN_VARIABLE
from kubani_lab.host import process_tree
from kubani_lab.lab import Lab

ANSIBLE = Path(__file__).resolve().parents[1] / "ansible"
# The task timer (--tasks), and the variable naming the file it writes.
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
TASK_TIMER = "kubani_task_times"
TASK_TIMES_VARIABLE = "KUBANI_TASK_TIMES_FILE"
STRATEGIES = ("kubani_linear", "linear")


def _timed(command: list[str], env: dict[str, str]) -> tuple[str, float, float]:
    """Run ``command``: its output, wall seconds, and the controller's CPU seconds (the
    command and every process it started on this machine: ssh, forks)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run(
        command, cwd=ANSIBLE, env=env, capture_output=True, text=True, check=False
    )
    elapsed = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{(result.stdout + result.stderr)[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return result.stdout, elapsed, cpu


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_busy_s() -> float:
    """CPU seconds this machine has spent busy since boot, all cores (``/proc/stat``)."""
    first_line = Path("/proc/stat").read_text(encoding="ascii").splitlines()[0]
    fields = [int(v) for v in first_line.split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / CLOCK_TICKS  # less idle and iowait


def _cpu_s(pid: int) -> float:
    """A process's CPU seconds, with what it reaped from children that have ended
    (``/proc/PID/stat``: utime, stime, cutime, cstime); 0 when it has ended."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return sum(int(v) for v in fields[11:15]) / CLOCK_TICKS


def nodes_cpu_s(lab: Lab) -> dict[str, float]:
    """Each of ``lab``'s nodes' CPU seconds so far: its ``systemd-nspawn`` and every process
    in it. The nodes share this machine's cores with the controller."""
    return {
        node.name: sum(_cpu_s(pid) for pid in process_tree(node.pid))
        for node in lab.require_state().nodes
        if node.pid is not None
    }


def task_summary(timings: list[dict[str, Any]], slowest: int) -> dict[str, Any]:
    """What the task timer recorded of one run: how many host-tasks ran (each costs the
    controller a fork, its templating and a call to the node, skipped ones included) and
    the ``slowest`` tasks by wall time."""
    return {
        "host_tasks": sum(sum(task["hosts"].values()) for task in timings),
        "slowest_tasks": sorted(timings, key=lambda task: -task["wall_s"])[:slowest],
    }


def site(lab: Lab, strategy: str, *extra: str, tasks: int = 0) -> dict[str, Any]:
    """One bare ``ansible-playbook site.yml``: wall and controller CPU seconds, the CPU the
    whole machine and the lab's nodes spent meanwhile, and the recap's changed count; with
    ``tasks``, also the host-task count and that many slowest tasks."""
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE / "ansible.cfg"),
        "ANSIBLE_CACHE_PLUGIN_CONNECTION": str(lab.folder / "facts"),
        "ANSIBLE_STRATEGY": strategy,
    }
    playbook = str(Path(sys.executable).parent / "ansible-playbook")
    command = [playbook, "-i", str(lab.inventory), "playbooks/site.yml", *extra]
    busy_before, nodes_before = machine_busy_s(), nodes_cpu_s(lab)
    timings = None
    if tasks:
        with tempfile.TemporaryDirectory(prefix="task-times-") as folder:
            timings_file = Path(folder) / "tasks.json"
            env |= {
                "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
                "ANSIBLE_CALLBACKS_ENABLED": TASK_TIMER,
                TASK_TIMES_VARIABLE: str(timings_file),
            }
            output, elapsed, cpu = _timed(command, env)
            timings = json.loads(timings_file.read_text(encoding="utf-8"))
    else:
        output, elapsed, cpu = _timed(command, env)
    busy, nodes_after = machine_busy_s() - busy_before, nodes_cpu_s(lab)
    nodes = {n: round(t - nodes_before.get(n, 0.0), 1) for n, t in sorted(nodes_after.items())}
    changed = sum(
        int(part.split("=", 1)[1])
        for line in output.splitlines()
        for part in line.split()
        if part.startswith("changed=")
    )
    found = {
        "wall_s": round(elapsed, 2),
        "controller_cpu_s": round(cpu, 2),
        "machine_busy_cpu_s": round(busy, 1),
        "machine_busy_share": round(busy / (elapsed * (os.cpu_count() or 1)), 2),
        "nodes_cpu_s": nodes,
        "changed": changed,
    }
    if timings is not None:
        found |= task_summary(timings, tasks)
    return found


# Put first on PATH for cluster-mgr's runs: ansible-playbook run by a shell that writes the
# seconds it took, so that each run's own overhead (cluster-mgr's wall minus Ansible's, in
# the same run) is measured without the spread between one run and the next.
_PLAYBOOK_TIMER = """#!/bin/sh
started=$(date +%s.%N)
"{playbook}" "$@"
status=$?
echo "$started $(date +%s.%N)" > "{record}"
exit $status
"""


def provision(lab: Lab, *extra: str) -> dict[str, Any]:
    """The same run through ``cluster-mgr provision --json`` (its runner, events and
    failure hints): wall and controller CPU seconds, and the wall seconds of the
    ansible-playbook it ran."""
    with tempfile.TemporaryDirectory(prefix="playbook-timer-") as folder:
        timer = Path(folder) / "ansible-playbook"
        record = Path(folder) / "times"
        playbook = Path(sys.executable).parent / "ansible-playbook"
        timer.write_text(_PLAYBOOK_TIMER.format(playbook=playbook, record=record))
        timer.chmod(0o755)
        env = {
            **os.environ,
            "KUBANI_ANSIBLE_DIR": str(ANSIBLE),
            "PATH": f"{folder}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        cli = str(Path(sys.executable).parent / "cluster-mgr")
        command = [cli, "-i", str(lab.inventory), "provision", "--json", *extra]
        _, elapsed, cpu = _timed(command, env)
        started, ended = (float(t) for t in record.read_text().split())
    return {
        "wall_s": round(elapsed, 3),
        "controller_cpu_s": round(cpu, 2),
        "ansible_playbook_s": round(ended - started, 3),
    }


def overhead(lab: Lab, strategy: str, runs: int) -> dict[str, Any]:
    """``cluster-mgr provision`` against a bare ``ansible-playbook`` of the same run, taken
    in turns (medians), for a run that checks every step and for one that finds nothing
    to do; and, within each cluster-mgr run, its wall seconds against those of the
    ansible-playbook it ran (``paired_overhead``: the median of those ratios)."""
    found: dict[str, Any] = {}
    for name, extra in (("full", ("-e", f"{FULL_RUN_VARIABLE}=true")), ("noop", ())):
        bare, cli, paired = [], [], []
        for _ in range(runs):
            bare.append(site(lab, strategy, *extra)["wall_s"])
            run = provision(lab, *extra)
            cli.append(run["wall_s"])
            paired.append(run["wall_s"] / run["ansible_playbook_s"] - 1)
        found[name] = {
            "ansible_playbook_s": round(statistics.median(bare), 3),
            "cluster_mgr_s": round(statistics.median(cli), 3),
            "overhead": round(statistics.median(cli) / statistics.median(bare) - 1, 3),
            "paired_overhead": round(statistics.median(paired), 4),
            "paired_overhead_runs": [round(p, 4) for p in paired],
        }
    return found


def measure(nodes: int, strategy: str, overhead_runs: int, tasks: int) -> dict[str, Any]:
    lab = Lab(f"bench-{nodes}")
    lab.down()
    try:
        started = time.perf_counter()
        lab.up(nodes=nodes, control_planes=1)
        boot = time.perf_counter() - started
        first = site(lab, strategy, tasks=tasks)
        noop = site(lab, strategy, tasks=tasks)
        full = site(lab, strategy, "-e", f"{FULL_RUN_VARIABLE}=true", tasks=tasks)
        row: dict[str, Any] = {
            "nodes": nodes,
            "strategy": strategy,
            "lab_up_s": round(boot, 1),
            "first": first,
            "noop": noop,
            "full_rerun": full,
            "noop_over_first": round(noop["wall_s"] / first["wall_s"], 2),
            "noop_controller_cpu_per_node_s": round(noop["controller_cpu_s"] / nodes, 2),
        }
        if overhead_runs:
            row["cluster_mgr_overhead"] = overhead(lab, strategy, overhead_runs)
        return row
    finally:
        lab.down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--strategy", nargs="+", choices=STRATEGIES, default=list(STRATEGIES))
    parser.add_argument(
        "--overhead-runs",
        type=int,
        default=0,
        help="Also time cluster-mgr provision against ansible-playbook, this many turns each.",
    )
    parser.add_argument(
        "--tasks",
        type=int,
        default=0,
        metavar="N",
        help="Also time each task (a callback): each run's host-task count and N slowest tasks.",
    )
    options = parser.parse_args()
    rows = [
        measure(n, s, options.overhead_runs, options.tasks)
        for s in options.strategy
        for n in options.nodes
    ]
    print(json.dumps(rows, indent=2))
    print(
        f"{'nodes':>5} {'strategy':<14} {'first s':>8} {'no-op s':>8} {'ratio':>6} "
        f"{'full s':>7} {'first CPU':>9} {'no-op CPU/node':>14} {'changed':>7}",
        file=sys.stderr,
    )
    for row in rows:
        print(
            f"{row['nodes']:>5} {row['strategy']:<14} {row['first']['wall_s']:>8} "
            f"{row['noop']['wall_s']:>8} {row['noop_over_first']:>6} "
            f"{row['full_rerun']['wall_s']:>7} "
            f"{row['first']['controller_cpu_s']:>9} {row['noop_controller_cpu_per_node_s']:>14} "
            f"{row['noop']['changed']:>7}",
            file=sys.stderr,
        )
        first = row["first"]
        print(
            f"      first run: the machine busy {first['machine_busy_cpu_s']} CPU s "
            f"({first['machine_busy_share']:.0%} of its {os.cpu_count()} cores), the nodes "
            f"{round(sum(first['nodes_cpu_s'].values()), 1)} s of it "
            f"({', '.join(f'{n} {t}' for n, t in first['nodes_cpu_s'].items())})",
            file=sys.stderr,
        )
        if "slowest_tasks" in first:
            print(
                f"      first run: {first['host_tasks']} host-tasks "
                f"({first['host_tasks'] / row['nodes']:.0f} per node); slowest:",
                file=sys.stderr,
            )
            for task in first["slowest_tasks"]:
                hosts = ", ".join(f"{n} {outcome}" for outcome, n in task["hosts"].items())
                print(
                    f"        {task['wall_s']:6.2f} s  {task['task']} ({hosts or 'no host'})",
                    file=sys.stderr,
                )
        for name, found in row.get("cluster_mgr_overhead", {}).items():
            print(
                f"      {name}: cluster-mgr provision {found['cluster_mgr_s']} s, "
                f"ansible-playbook {found['ansible_playbook_s']} s "
                f"({found['overhead']:+.1%}); within each cluster-mgr run "
                f"{found['paired_overhead']:+.1%} (median)",
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
