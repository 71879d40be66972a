"""``k3s server --cluster-reset [--cluster-reset-restore-path=FILE]``, run with K3s stopped:
this server's etcd becomes a cluster of one member, from its own data (etcd's
``--force-new-cluster``) or from a snapshot (``etcdutl snapshot restore``)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from kubani_lab.k3s.control import (
    ControlPlane,
    ControlPlaneError,
    ControlPlaneFiles,
    Etcd,
    EtcdMember,
    ensure_etcd_pki,
    restore_snapshot,
)
from kubani_lab.k3s.payload import program

RESET_DONE = (
    "Managed etcd cluster membership has been reset, restart without --cluster-reset flag "
    "now. Backup and delete ${datadir}/server/db on each peer etcd server and rejoin the nodes"
)


def _node_ip(config: dict[str, Any]) -> str:
    ips = config.get("node-ip") or []
    return str(ips[0]) if ips else socket.gethostbyname(socket.gethostname())


def cluster_reset(
    config: dict[str, Any], data_dir: Path, bin_dir: Path | None, node_name: str
) -> int:
    from kubani_lab.k3s.logs import log
    from kubani_lab.k3s.server import FatalError

    binary = program(bin_dir, "kube-components")
    if binary is None:
        raise FatalError("this k3s carries no etcd (no kube-components payload)")
    files = ControlPlaneFiles(Path(str(config.get("data-dir") or data_dir)) / "server")
    member = EtcdMember(node_name, _node_ip(config))
    ensure_etcd_pki(files, member)
    restore = config.get("cluster-reset-restore-path")
    if restore:
        source = Path(str(restore))
        if not source.is_file():
            raise FatalError(f"failed to restore snapshot: {source}: no such file")
        kept = restore_snapshot(binary, files, member, source)
        log("info", f"etcd data restored from {source}; the previous data is kept in {kept}")
    elif not files.etcd_data.exists():
        raise FatalError("no etcd data to reset: this server does not run embedded etcd")
    # Start etcd once as a new cluster of this member alone, then stop it.
    plane = ControlPlane(
        binary,
        files,
        advertise_address=member.address,
        etcd=Etcd(member, (member,), "new"),
        etcd_args=["force-new-cluster=true"],
        output=files.server / "logs",
    )
    try:
        plane.start_etcd()
    except ControlPlaneError as exc:
        raise FatalError(f"cluster reset failed: {exc}") from exc
    finally:
        plane.stop()
    log("info", RESET_DONE)
    return 0
