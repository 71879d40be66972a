"""``cluster-mgr inventory``: bring another tool's inventory over."""

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Convert other tools' inventories into Kubani's.", no_args_is_help=True)


def _addresses(pairs: list[str]) -> dict[str, str]:
    from kubani.errors import KubaniError

    found: dict[str, str] = {}
    for pair in pairs:
        host, equals, address = pair.partition("=")
        if not equals or not host.strip() or not address.strip():
            raise KubaniError(
                f"cannot use --address {pair!r}", "it is not HOST=ADDRESS", "e.g. w-1=100.64.0.7"
            )
        found[host.strip()] = address.strip()
    return found


@app.command("import")
def import_inventory(
    source: Annotated[
        Path,
        typer.Argument(help="k3s-ansible or Kubespray inventory (YAML or INI), or k0sctl.yaml."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="Kubani inventory file to write.")
    ] = Path("ansible/inventory/hosts.yml"),
    addresses: Annotated[
        list[str] | None,
        typer.Option(
            "--address",
            help="A host's Tailscale address, HOST=ADDRESS (repeatable), for hosts whose "
            "inventory entry is not already on the tailnet.",
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Convert a k3s-ansible inventory (groups server/agent or master/node) into Kubani's:
    hosts, token, K3s version, API endpoint and the extra server/agent args that map; or a
    Kubespray one (kube_control_plane/kube_node), or a k0sctl cluster file: its hosts."""
    from kubani.cli.output import emit_json, note, success
    from kubani.errors import KubaniError
    from kubani.inventory import importer

    if not source.exists():  # a pipe is fine: `inventory import <(ssh box cat hosts.ini)`
        raise KubaniError(f"cannot import {source}", "no such file", "check the path")
    if source.is_dir():
        raise KubaniError(
            f"cannot import {source}", "it is a folder", "pass the inventory file itself"
        )
    importer.refuse_existing(output)
    conversion = importer.convert(source, _addresses(addresses or []))
    model = importer.check(conversion, source)
    written = importer.write(conversion, source, output)
    if json_output:
        emit_json(
            {
                "inventory": str(written),
                "control_planes": [n.hostname for n in model.control_planes],
                "workers": [n.hostname for n in model.workers],
                "notes": conversion.notes,
            }
        )
        return
    for line in conversion.notes:
        note(line)
    success(
        f"wrote {written} ({len(model.control_planes)} control plane(s), "
        f"{len(model.workers)} worker(s)); check it with `cluster-mgr -i {written} validate`"
    )
