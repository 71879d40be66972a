"""Wall time of cluster-mgr start-up, its 1,000-node operations and validating 10,000
nodes, against targets."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

BIN = Path(sys.executable).parent / "cluster-mgr"


def tailnet_address(index: int) -> str:
    return f"100.{64 + index // 65536}.{(index // 256) % 256}.{index % 256}"


def write_status(path: Path, peers: int) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.tailnet_fakes import TailnetDevice, render_status

    devices = [TailnetDevice("mgmt", tailnet_address(1))]
    for i in range(2, peers + 1):
        devices.append(
            TailnetDevice(
                f"node-{i}",
                tailnet_address(i + 256),
                relay="fra" if i % 7 == 0 else None,
                online=i % 5 != 0,
                tags=["tag:k3s"] if i % 2 else [],
            )
        )
    path.write_text(json.dumps(render_status(devices, "mgmt")))


def write_inventory(path: Path, nodes: int) -> None:
    lines = [
        "---",
        "# benchmark inventory",
        "all:",
        "  vars:",
        "    cluster_name: bench",
        "  children:",
        "    control_plane:",
        "      hosts:",
        "        cp-0:",
        f"          tailscale_ip: {tailnet_address(2 + 256)}",
        "    workers:",
        "      hosts:",
    ]
    for i in range(3, nodes + 2):
        lines += [
            f"        # worker {i}",
            f"        node-{i}:",
            f"          tailscale_ip: {tailnet_address(i + 256)}",
            "          reserved_cpu: 500m",
            "          node_labels:",
            f"            zone: z{i % 4}",
        ]
    path.write_text("\n".join(lines) + "\n")


def median_seconds(
    command: list[str],
    runs: int,
    before: Callable[[], None] | None = None,
    env: dict[str, str] | None = None,
) -> float:
    samples = []
    for _ in range(runs):
        if before:
            before()
        start = time.perf_counter()
        result = subprocess.run(command, capture_output=True, check=False, env=env)
        samples.append(time.perf_counter() - start)
        if result.returncode != 0:
            raise SystemExit(f"{' '.join(command)} failed: {result.stderr.decode()[-500:]}")
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    rows: list[dict[str, object]] = []
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        status, inventory, pristine = work / "status.json", work / "hosts.yml", work / "orig.yml"
        write_status(status, 1000)
        write_inventory(pristine, 1000)
        shutil.copy(pristine, inventory)

        kubectl = shutil.which("kubectl")
        base = median_seconds([kubectl, "version", "--client"], args.runs) if kubectl else None
        # Where PYTHONDONTWRITEBYTECODE is set (containers, CI), only the bytecode compiled
        # at install is used; without it Python writes what is missing on the first run.
        no_bytecode = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
        with_bytecode = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        for name, command, env in (
            ("cluster-mgr --help", [str(BIN), "--help"], no_bytecode),
            ("cluster-mgr --help (bytecode written)", [str(BIN), "--help"], with_bytecode),
            ("cluster-mgr version", [str(BIN), "version"], no_bytecode),
            ("cluster-tui --help", [str(BIN.with_name("cluster-tui")), "--help"], no_bytecode),
        ):
            seconds = median_seconds(command, args.runs, env=env)
            rows.append(
                {
                    "what": name,
                    "seconds": seconds,
                    "target": "<= 2x kubectl version --client",
                    "ratio": seconds / base if base else None,
                    "ok": (seconds <= 2 * base) if base else None,
                }
            )
        if base is not None:
            rows.append({"what": "kubectl version --client", "seconds": base, "target": "baseline"})

        seconds = median_seconds(
            [str(BIN), "-i", str(inventory), "discover", "--json", "--status-file", str(status)],
            args.runs,
        )
        rows.append(
            {
                "what": "discover --json, 1,000 peers",
                "seconds": seconds,
                "target": "< 0.3 s",
                "ok": seconds < 0.3,
            }
        )

        def reset() -> None:
            shutil.copy(pristine, inventory)

        seconds = median_seconds(
            [str(BIN), "-i", str(inventory), "add-node", "bench-new", tailnet_address(5000)],
            args.runs,
            before=reset,
        )
        rows.append(
            {
                "what": "add-node, 1,000-node inventory",
                "seconds": seconds,
                "target": "< 0.3 s",
                "ok": seconds < 0.3,
            }
        )

        large = work / "large" / "hosts.yml"
        large.parent.mkdir()
        write_inventory(large, 10_000)
        seconds = median_seconds([str(BIN), "-i", str(large), "validate"], max(3, args.runs // 3))
        rows.append(
            {
                "what": "validate, 10,000-node inventory",
                "seconds": seconds,
                "target": "< 2 s",
                "ok": seconds < 2,
            }
        )

    if args.json:
        print(json.dumps(rows, indent=2))
        return
    # The interpreter's build moves every figure by about a fifth (pyenv's against a
    # distribution's): name it with them.
    print(f"python {sys.version.split()[0]} at {Path(sys.executable).resolve()}")
    for row in rows:
        ratio = f"  ({row['ratio']:.1f}x kubectl)" if row.get("ratio") else ""
        ok = row.get("ok")
        verdict = "" if ok is None else ("ok" if ok else "MISSED")
        print(
            f"{row['what']:<40} {row['seconds'] * 1000:7.0f} ms{ratio:<18} "
            f"{row['target']:<32} {verdict}"
        )


if __name__ == "__main__":
    main()
