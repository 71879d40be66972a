"""Flux's source- and kustomize-controller, simulated (the lab cannot pull their images).

Active only while the controllers' Deployments are available, as the real ones would be.
The source-controller part is real where it counts: it fetches the GitRepository with
``git`` over the network, using the Secret's SSH identity and known_hosts (or HTTPS user
and password), and records the fetched commit as the artifact revision. The
kustomize-controller part checks what Flux checks before it applies (the source artifact,
``dependsOn``, the decryption Secret, that ``path`` exists in the fetched revision) and
reports Ready with the revision; it does not build or apply the objects under ``path``.
Statuses follow the Flux API (conditions, reasons, ``lastHandledReconcileAt``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubani.lab.k3s.config import duration_seconds
from kubani.lab.k3s.store import Conflict, Key, Store, now

SOURCE = "source.toolkit.fluxcd.io"
KUSTOMIZE = "kustomize.toolkit.fluxcd.io"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
RETRY_S = 10.0


class Failure(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class FluxSimulation:
    def __init__(self, store: Store, workdir: Path, stop: threading.Event) -> None:
        self.store = store
        self.workdir = workdir
        self.stop = stop
        self.next_due: dict[str, float] = {}

    def run_forever(self, period_s: float = 1.0) -> None:
        while not self.stop.wait(period_s):
            with contextlib.suppress(Exception):
                self.tick()

    def tick(self) -> None:
        if self._available("source-controller"):
            for repo in self.store.list(SOURCE, "gitrepositories")[0]:
                if self._due(repo):
                    self._reconcile(repo, SOURCE, "gitrepositories", self._fetch)
        if self._available("kustomize-controller"):
            for kustomization in self.store.list(KUSTOMIZE, "kustomizations")[0]:
                if self._due(kustomization):
                    self._reconcile(kustomization, KUSTOMIZE, "kustomizations", self._check)

    def _available(self, name: str) -> bool:
        for deployment in self.store.list("apps", "deployments")[0]:
            if deployment["metadata"]["name"] == name:
                return int((deployment.get("status") or {}).get("availableReplicas") or 0) > 0
        return False

    def _due(self, obj: dict[str, Any]) -> bool:
        meta, status = obj["metadata"], obj.get("status") or {}
        if (obj.get("spec") or {}).get("suspend"):
            return False
        if status.get("observedGeneration") != meta.get("generation"):
            return True
        requested = (meta.get("annotations") or {}).get(REQUESTED_AT)
        if requested and requested != status.get("lastHandledReconcileAt"):
            return True
        return time.monotonic() >= self.next_due.get(meta["uid"], 0.0)

    def _reconcile(
        self,
        obj: dict[str, Any],
        group: str,
        plural: str,
        action: Callable[[dict[str, Any]], tuple[str, str, dict[str, Any]]],
    ) -> None:
        meta = obj["metadata"]
        interval = duration_seconds((obj.get("spec") or {}).get("interval"), 60.0)
        try:
            reason, message, extra = action(obj)
            ready = "True"
            self.next_due[meta["uid"]] = time.monotonic() + interval
        except Failure as failure:
            reason, message, extra, ready = failure.reason, failure.message, {}, "False"
            retry = duration_seconds((obj.get("spec") or {}).get("retryInterval"), RETRY_S)
            self.next_due[meta["uid"]] = time.monotonic() + min(retry, RETRY_S)
        key: Key = (group, plural, meta.get("namespace", "default"), meta["name"])
        current = self.store.get(key)
        if current is None:
            return
        status = dict(current.get("status") or {})
        status.update(extra)
        status["observedGeneration"] = current["metadata"].get("generation", 1)
        requested = (current["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        if requested:
            status["lastHandledReconcileAt"] = requested
        previous = {c.get("type"): c for c in status.get("conditions") or []}
        stamp = now()
        conditions = [
            self._condition("Ready", ready, reason, message, status, previous.get("Ready"), stamp)
        ]
        if plural == "gitrepositories" and ready == "True":
            conditions.append(
                self._condition(
                    "ArtifactInStorage", "True", reason, message, status,
                    previous.get("ArtifactInStorage"), stamp,
                )
            )  # fmt: skip
        status["conditions"] = conditions
        if current.get("status") == status:
            return
        current["status"] = status
        with contextlib.suppress(Conflict, KeyError):
            self.store.update(key, current, check_version=False, bump_generation=False)

    @staticmethod
    def _condition(
        kind: str,
        state: str,
        reason: str,
        message: str,
        status: dict[str, Any],
        before: dict[str, Any] | None,
        stamp: str,
    ) -> dict[str, Any]:
        unchanged = before is not None and before.get("status") == state
        return {
            "type": kind,
            "status": state,
            "reason": reason,
            "message": message,
            "observedGeneration": status["observedGeneration"],
            "lastTransitionTime": before.get("lastTransitionTime", stamp)
            if unchanged and before
            else stamp,
        }

    # ---- source-controller ------------------------------------------------------------

    def _fetch(self, repo: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        spec = repo.get("spec") or {}
        namespace, name = repo["metadata"].get("namespace", "default"), repo["metadata"]["name"]
        url = str(spec.get("url", ""))
        branch = str((spec.get("ref") or {}).get("branch") or "master")
        with tempfile.TemporaryDirectory(prefix="kubani-flux-auth-") as scratch:
            environment = self._git_auth(spec, namespace, url, Path(scratch))
            head = self._git(["ls-remote", url, f"refs/heads/{branch}"], environment, spec)
            if not head.strip():
                raise Failure(
                    "GitOperationFailed",
                    f"failed to checkout and determine revision: unable to clone '{url}': "
                    f'couldn\'t find remote ref "refs/heads/{branch}"',
                )
            commit = head.split()[0]
            store = self.workdir / "gitrepository" / namespace / name
            checkout = store / commit
            if not checkout.is_dir():
                partial = store / f".{commit}.partial"
                shutil.rmtree(partial, ignore_errors=True)
                partial.parent.mkdir(parents=True, exist_ok=True)
                self._git(
                    ["clone", "--quiet", "--depth", "1", "--branch", branch, url, str(partial)],
                    environment,
                    spec,
                )
                shutil.rmtree(partial / ".git", ignore_errors=True)
                partial.rename(checkout)
                for old in store.iterdir():
                    if old != checkout:
                        shutil.rmtree(old, ignore_errors=True)
        revision = f"{branch}@sha1:{commit}"
        digest, size = _digest(checkout)
        path = f"gitrepository/{namespace}/{name}/{commit}.tar.gz"
        artifact = {
            "digest": digest,
            "lastUpdateTime": now(),
            "path": path,
            "revision": revision,
            "size": size,
            "url": f"http://source-controller.flux-system.svc.cluster.local./{path}",
        }
        current = (repo.get("status") or {}).get("artifact") or {}
        if current.get("revision") == revision:
            artifact["lastUpdateTime"] = current.get("lastUpdateTime", artifact["lastUpdateTime"])
        return "Succeeded", f"stored artifact for revision '{revision}'", {"artifact": artifact}

    def _git_auth(
        self, spec: dict[str, Any], namespace: str, url: str, scratch: Path
    ) -> dict[str, str]:
        environment = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(scratch),
            "GIT_TERMINAL_PROMPT": "0",
        }
        ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10"]
        reference = (spec.get("secretRef") or {}).get("name")
        data: dict[str, str] = {}
        if reference:
            secret = self.store.get(("", "secrets", namespace, reference))
            if secret is None:
                raise Failure(
                    "AuthenticationFailed",
                    f"failed to get secret '{namespace}/{reference}': "
                    f'secrets "{reference}" not found',
                )
            data = {
                k: base64.b64decode(v).decode(errors="replace")
                for k, v in (secret.get("data") or {}).items()
            }
        if url.startswith("ssh://"):
            if "identity" not in data or "known_hosts" not in data:
                raise Failure(
                    "AuthenticationFailed",
                    f"secret '{namespace}/{reference}': identity and known_hosts are required "
                    "for ssh:// URLs",
                )
            identity, known = scratch / "identity", scratch / "known_hosts"
            identity.write_text(data["identity"])
            identity.chmod(0o600)
            known.write_text(data["known_hosts"])
            ssh += ["-i", str(identity), "-o", "IdentitiesOnly=yes"]
            ssh += ["-o", f"UserKnownHostsFile={known}", "-o", "StrictHostKeyChecking=yes"]
        elif "username" in data:
            token = base64.b64encode(f"{data['username']}:{data.get('password', '')}".encode())
            environment["GIT_CONFIG_COUNT"] = "1"
            environment["GIT_CONFIG_KEY_0"] = "http.extraHeader"
            environment["GIT_CONFIG_VALUE_0"] = f"Authorization: Basic {token.decode()}"
        environment["GIT_SSH_COMMAND"] = " ".join(ssh)
        return environment

    @staticmethod
    def _git(arguments: list[str], environment: dict[str, str], spec: dict[str, Any]) -> str:
        timeout = duration_seconds(spec.get("timeout"), 60.0)
        try:
            result = subprocess.run(
                ["git", *arguments],
                capture_output=True,
                text=True,
                env=environment,
                timeout=timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise Failure("GitOperationFailed", f"git {arguments[0]} timed out") from exc
        except FileNotFoundError as exc:
            raise Failure("GitOperationFailed", "git is not available") from exc
        if result.returncode != 0:
            boilerplate = ("fatal: Could not read from remote", "Please make sure", "and the repo")
            lines = [
                line.strip()
                for line in result.stderr.splitlines()
                if line.strip()
                and not line.strip().startswith(boilerplate)
                and not line.startswith("Warning: Permanently added")
            ]
            detail = "; ".join(lines[:2]) if lines else f"git exited {result.returncode}"
            if "Permission denied" in result.stderr or "Host key verification" in result.stderr:
                raise Failure("AuthenticationFailed", f"unable to clone: {detail}")
            raise Failure(
                "GitOperationFailed",
                f"failed to checkout and determine revision: unable to clone: {detail}",
            )
        return result.stdout

    # ---- kustomize-controller -----------------------------------------------------------

    def _check(self, kustomization: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
        spec = kustomization.get("spec") or {}
        namespace = kustomization["metadata"].get("namespace", "default")
        source = spec.get("sourceRef") or {}
        source_namespace = source.get("namespace") or namespace
        repo = self.store.get((SOURCE, "gitrepositories", source_namespace, source.get("name", "")))
        artifact = ((repo or {}).get("status") or {}).get("artifact")
        if repo is None or not artifact:
            raise Failure("ArtifactFailed", "Source artifact not found, retrying in 30s")
        for dependency in spec.get("dependsOn") or []:
            other_namespace = dependency.get("namespace") or namespace
            other = self.store.get(
                (KUSTOMIZE, "kustomizations", other_namespace, dependency.get("name", ""))
            )
            if other is None or not _is_ready(other):
                raise Failure(
                    "DependencyNotReady",
                    f"dependency '{other_namespace}/{dependency.get('name')}' is not ready",
                )
        decryption = (spec.get("decryption") or {}).get("secretRef") or {}
        if decryption.get("name") and not self.store.get(
            ("", "secrets", namespace, decryption["name"])
        ):
            raise Failure(
                "BuildFailed",
                f'decryption failed: secrets "{decryption["name"]}" not found',
            )
        revision = artifact["revision"]
        commit = revision.rsplit(":", 1)[-1]
        root = self.workdir / "gitrepository" / source_namespace / source.get("name", "") / commit
        relative = str(spec.get("path") or "./").lstrip("./") or "."
        target = (root / relative).resolve()
        if not root.is_dir():
            raise Failure("ArtifactFailed", "Source artifact not found, retrying in 30s")
        if not target.is_dir() or not target.is_relative_to(root.resolve()):
            raise Failure(
                "ArtifactFailed",
                f"kustomization path not found: stat {spec.get('path')}: no such file or directory",
            )
        return (
            "ReconciliationSucceeded",
            f"Applied revision: {revision}",
            {"lastAppliedRevision": revision, "lastAttemptedRevision": revision},
        )


def _is_ready(obj: dict[str, Any]) -> bool:
    status = obj.get("status") or {}
    return status.get("observedGeneration") == obj["metadata"].get("generation") and any(
        c.get("type") == "Ready" and c.get("status") == "True"
        for c in status.get("conditions") or []
    )


def _digest(folder: Path) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        content = path.read_bytes()
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + content)
        size += len(content)
    return f"sha256:{digest.hexdigest()}", size
