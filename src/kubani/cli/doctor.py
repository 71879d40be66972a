"""``cluster-mgr doctor``: every preflight check, as a checklist, changing nothing."""

from typing import Annotated, Any

import typer

app = typer.Typer()

_MARK = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "fail": "[bold red]✗[/]"}


@app.command()
def doctor(
    json_output: Annotated[
        bool, typer.Option("--json", help="Print the checklist as JSON.")
    ] = False,
) -> None:
    """Check SSH, sudo, OS, Tailscale, tailnet paths and ports, disk, memory and time on
    every node (doctor.yml, read-only); exit 1 when any check fails."""
    import threading

    from rich.markup import escape

    from kubani.ansible.doctor import Check, node_checks, unreachable
    from kubani.ansible.runner import run_playbook
    from kubani.cli.common import read_inventory, request_for
    from kubani.cli.output import console, emit_json
    from kubani.cluster.gather import inventory_nodes

    document = read_inventory()
    checks: list[Check] = []
    _inventory, problems = document.validate()
    for problem in problems.errors:
        checks.append(
            Check("inventory", "inventory", "fail", f"{problem.where}: {problem.message}",
                  "fix it (`cluster-mgr validate` lists every problem)")
        )  # fmt: skip
    if not problems.errors:
        checks.append(Check("inventory", "inventory", "ok", str(document.hosts_path)))
    nodes = {n.name: n for n in inventory_nodes(document)}
    reports: dict[str, dict[str, Any]] = {}
    err = console(stderr=True)

    def collect(event: Any, _state: Any) -> None:
        if event.report is not None and event.host:
            reports[event.host] = event.report

    with err.status("looking at every node (read-only)…"):
        run = run_playbook(request_for("doctor"), collect, threading.Event())
    failed_hosts = {f.host: f.message for f in run.state.failures}
    for name, node in nodes.items():
        if name in reports:
            checks += node_checks(name, node.role, node.tailscale_ip, reports[name])
        else:
            checks += unreachable(name, failed_hosts.get(name))
    checks += _tailnet_policy_checks([n.tailscale_ip for n in nodes.values() if n.tailscale_ip])
    if json_output:
        emit_json(
            {
                "ok": all(c.result != "fail" for c in checks),
                "checks": [c.as_json() for c in checks],
                "log": str(run.log),
            }
        )
    else:
        out = console()
        host = None
        for check in checks:
            if check.host != host:
                host = check.host
                out.print(f"[bold]{escape(host)}[/]")
            out.print(f"  {_MARK[check.result]} {escape(check.name)}: {escape(check.detail)}")
            if check.fix and check.result != "ok":
                out.print(f"      [yellow]fix:[/] {escape(check.fix)}")
        failures = sum(c.result == "fail" for c in checks)
        warnings = sum(c.result == "warn" for c in checks)
        err.print(f"{failures} problem(s), {warnings} warning(s); log: {run.log}", markup=False)
    if any(c.result == "fail" for c in checks):
        raise typer.Exit(1)


def _tailnet_policy_checks(addresses: list[str]) -> list[Any]:
    """The live tailnet policy, when this environment has credentials to read it."""
    from kubani.ansible.doctor import Check
    from kubani.errors import KubaniError
    from kubani.operations.tailnet import live_policy_verdicts

    try:
        verdicts = live_policy_verdicts(addresses)
    except KubaniError as exc:
        return [Check("tailnet policy", "read", "warn", exc.line(), None)]
    if verdicts is None:
        return []
    return [
        Check(
            "tailnet policy",
            v.path.what,
            "ok" if v.allowed else "fail",
            f"{v.path.src} → {v.path.dst} {v.path.proto}/{v.path.ports}",
            None if v.allowed else "add the entries `cluster-mgr tailnet policy` prints",
        )
        for v in verdicts
    ]
