"""The ``k3s`` stand-in command: ``--version``, ``server``, ``agent``, ``etcd-snapshot``."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kubani_lab.k3s.config import ConfigError, read_config
from kubani_lab.k3s.logs import log

DATA_DIR = Path("/var/lib/rancher/k3s")
# Like K3s, an agent keeps retrying a server that is not answering yet; a wrong token, a CA
# mismatch or a rejected node password end it at once.
JOIN_RETRY_S = 120.0


def _definite(exc: Exception) -> bool:
    text = str(exc)
    return any(
        reason in text
        for reason in ("401", "403", "does not match the Cluster CA", "Node password rejected")
    )


def _log_retry(message: str) -> None:
    log("error", f"{message}; retrying", sys.stderr)


def _fatal(message: str) -> int:
    log("fatal", message, sys.stderr)
    return 1


def _version(version: str) -> int:
    print(f"k3s version {version} (kubani-lab stand-in)")
    print("go version go1.26.8")
    return 0


def _config_path(flags: list[str]) -> tuple[Path, list[str]]:
    rest, path = [], Path("/etc/rancher/k3s/config.yaml")
    index = 0
    while index < len(flags):
        flag = flags[index]
        if flag in ("--config", "-c"):
            path, index = Path(flags[index + 1]), index + 2
            continue
        if flag.startswith("--config="):
            path = Path(flag.split("=", 1)[1])
        else:
            rest.append(flag)
        index += 1
    return path, rest


def _load_config(flags: list[str]) -> dict[str, Any] | None:
    """The merged configuration, or None after logging why it cannot be read."""
    path, rest = _config_path(flags)
    try:
        return read_config(path, rest)
    except ConfigError as exc:
        _fatal(str(exc))
        return None


def _programs(config: dict[str, Any]) -> Path | None:
    """The programs this ``k3s`` carries, unpacked into its data folder."""
    from kubani_lab.k3s.payload import unpack

    data_dir = Path(str(config.get("data-dir") or DATA_DIR))
    archive = Path(sys.argv[0])
    return unpack(archive, data_dir) if archive.is_file() else None


def _server(version: str, flags: list[str]) -> int:
    from kubani_lab.k3s.control import ControlPlaneError
    from kubani_lab.k3s.reset import cluster_reset
    from kubani_lab.k3s.server import FatalError, K3sServer, install_signal_handlers

    config = _load_config(flags)
    if config is None:
        return 1
    try:
        bin_dir = _programs(config)
        name = str(config.get("node-name") or socket.gethostname())
        if config.get("cluster-reset"):
            return cluster_reset(config, DATA_DIR, bin_dir, name)
        server = K3sServer(config, version, bin_dir, node_name=name)
        install_signal_handlers(server.stop)
        return server.run()
    except (FatalError, ControlPlaneError, OSError) as exc:
        return _fatal(str(exc))


def _agent(version: str, flags: list[str]) -> int:
    from kubani_lab.k3s.agent import Agent, JoinError
    from kubani_lab.k3s.client import ApiError
    from kubani_lab.k3s.notify import notify
    from kubani_lab.k3s.server import install_signal_handlers

    config = _load_config(flags)
    if config is None:
        return 1
    server = config.get("server")
    token = config.get("token")
    if not token and config.get("token-file"):
        token = Path(str(config["token-file"])).read_text().strip()
    if not server or not token:
        return _fatal("--server and --token are required to run an agent")
    stop = threading.Event()
    install_signal_handlers(stop)
    agent = Agent(
        config,
        str(server),
        str(config.get("node-name") or socket.gethostname()),
        bin_dir=_programs(config),
        version=version,
        data_dir=Path(str(config.get("data-dir") or DATA_DIR)),
        stop=stop,
    )
    deadline = time.monotonic() + JOIN_RETRY_S
    while True:
        try:
            agent.join(str(token))
            agent.write_containerd_config()
            agent.register()
            break
        except (JoinError, ApiError, OSError) as exc:
            message = f"Error: failed to validate connection to cluster at {server}: {exc}"
            if _definite(exc) or time.monotonic() > deadline or stop.is_set():
                return _fatal(message)
            _log_retry(message)
            stop.wait(2)
    try:
        try:
            agent.start_kubelet()
        except JoinError as exc:
            return _fatal(str(exc))
        notify("READY=1")
        while not stop.wait(1.0):
            died = agent.died()
            if died:
                return _fatal(f"{died} stopped unexpectedly")
    finally:
        agent.stop_kubelet()
    return 0


def _snapshot(flags: list[str]) -> int:
    from kubani_lab.k3s.client import ApiError, Client

    if not flags:
        return _fatal("etcd-snapshot: give save, ls, delete or prune")
    command, rest = flags[0], flags[1:]
    config = read_config()
    data_dir = Path(str(config.get("data-dir") or DATA_DIR))
    folder = data_dir / "server" / "db" / "snapshots"
    if config.get("etcd-snapshot-dir"):
        folder = Path(str(config["etcd-snapshot-dir"]))
    if command == "save":
        name = None
        for index, flag in enumerate(rest):
            if flag.startswith("--name="):
                name = flag.split("=", 1)[1]
            elif flag == "--name" and index + 1 < len(rest):
                name = rest[index + 1]
        tls = data_dir / "server" / "tls"
        client = Client(
            "https://127.0.0.1:6443",
            ca_pem=(tls / "server-ca.crt").read_text(),
            cert_file=str(tls / "client-admin.crt"),
            key_file=str(tls / "client-admin.key"),
            timeout=120,
        )
        try:
            result = client.request("POST", "/v1-k3s/snapshot", {"name": name})
        except (ApiError, OSError) as exc:
            return _fatal(f"failed to save snapshot: {exc}")
        print(f'level=info msg="Snapshot {result["name"]} saved."')
        return 0
    if command in ("ls", "list", "l"):
        as_json = "--output=json" in rest or ("-o" in rest and "json" in rest)
        rows = []
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(path.stat().st_mtime))
            rows.append((path.name, f"file://{path}", path.stat().st_size, created))
        if as_json:
            print(
                json.dumps(
                    [
                        {"name": n, "location": loc, "size": s, "createdAt": c}
                        for n, loc, s, c in rows
                    ]
                )
            )
            return 0
        width_name = max([len("Name"), *(len(r[0]) for r in rows)]) + 4
        width_loc = max([len("Location"), *(len(r[1]) for r in rows)]) + 4
        print(f"{'Name':<{width_name}}{'Location':<{width_loc}}{'Size':<8}Created")
        for name, location, size, created in rows:
            print(f"{name:<{width_name}}{location:<{width_loc}}{size:<8}{created}")
        return 0
    if command in ("delete", "rm"):
        for name in rest:
            (folder / name).unlink(missing_ok=True)
            print(f'level=info msg="Snapshot {name} deleted."')
        return 0
    if command == "prune":
        return 0
    return _fatal(f"etcd-snapshot: unknown command {command!r}")


def _kubectl(args: list[str]) -> int:
    """``k3s kubectl``: the carried kubectl, with the admin kubeconfig unless one is given."""
    import os

    from kubani_lab.k3s.payload import program as carried

    config = read_config()
    kube_components = carried(_programs(config), "kube-components")
    if kube_components is None:
        return _fatal("this k3s carries no kubectl")
    environment = dict(os.environ)
    if "KUBECONFIG" not in environment and not any(a.startswith("--kubeconfig") for a in args):
        environment["KUBECONFIG"] = str(
            config.get("write-kubeconfig") or "/etc/rancher/k3s/k3s.yaml"
        )
    program = str(kube_components)
    os.execve(program, [program, "kubectl", *args], environment)
    return 1  # not reached: execve replaces this process


def main(argv: list[str] | None = None, version: str = "v1.35.4+k3s1") -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("--version", "-v", "version"):
        return _version(version)
    command, rest = args[0], args[1:]
    if command == "server":
        return _server(version, rest)
    if command == "agent":
        return _agent(version, rest)
    if command == "etcd-snapshot":
        return _snapshot(rest)
    if command == "check-config":
        print("System checks: pass (kubani-lab stand-in)")
        return 0
    if command == "kubectl":
        return _kubectl(rest)
    return _fatal(f"unknown command {command!r}")


if __name__ == "__main__":
    sys.exit(main())
