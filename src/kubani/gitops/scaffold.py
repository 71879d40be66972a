"""``app new``: an app folder from the tree's templates, wired into the apps overlay.

Nothing is written unless the new folder builds with kustomize and validates; the overlay
is edited as text (one line added, comments kept) and written atomically.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from string import Template

import yaml

from kubani.errors import KubaniError
from kubani.models.names import is_dns_label, is_dns_name
from kubani.yamlsafe import safe_load

IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
OVERLAY = Path("apps/overlays/default/kustomization.yaml")
# Namespaces the cluster itself lives in: an app's Namespace (which Flux owns, and prunes
# with the app) and its deny-by-default policies must not land there.
CLUSTER_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "kube-node-lease",
                                "flux-system"})  # fmt: skip
POLICIES = "../../../infrastructure/networking/policies"


@dataclass(frozen=True)
class AppSpec:
    name: str
    image: str
    port: int | None = None
    replicas: int = 1
    gpu: bool = False
    namespace: str | None = None
    ingress: str | None = None

    @property
    def target_namespace(self) -> str:
        return self.namespace or self.name

    def check(self) -> None:
        if not is_dns_label(self.name):
            raise KubaniError(
                f"cannot create app {self.name!r}",
                "the name must be a DNS label (lower-case letters, digits and '-', at most 63, "
                "starting and ending with a letter or digit)",
                "choose a name such as 'my-app'",
            )
        if self.namespace is not None and not is_dns_label(self.namespace):
            raise KubaniError(
                f"cannot create app {self.name!r}",
                f"namespace {self.namespace!r} is not a DNS label",
                "choose a namespace such as 'my-app'",
            )
        if self.target_namespace in CLUSTER_NAMESPACES:
            raise KubaniError(
                f"cannot create app {self.name!r}",
                f"{self.target_namespace} is one of the cluster's own namespaces: the app's "
                "Namespace object would be Flux's to prune, and its deny-by-default policies "
                "would cut off what runs there",
                "choose a namespace of the app's own (--namespace), or leave it out",
            )
        if not IMAGE.match(self.image):
            raise KubaniError(
                f"cannot create app {self.name!r}",
                f"{self.image!r} is not an image reference",
                "pass --image like nginx:1.27 or ghcr.io/org/app:1.0",
            )
        if self.port is not None and not 1 <= self.port <= 65535:
            raise KubaniError(
                f"cannot create app {self.name!r}",
                f"port {self.port} is out of range",
                "use 1-65535",
            )
        if self.replicas < 0:
            raise KubaniError(
                f"cannot create app {self.name!r}", "replicas cannot be negative", "use 0 or more"
            )
        if self.ingress is not None:
            if not is_dns_name(self.ingress):
                raise KubaniError(
                    f"cannot create app {self.name!r}",
                    f"ingress host {self.ingress!r} is not a DNS name",
                    "pass a host such as web.example.com",
                )
            if self.port is None:
                raise KubaniError(
                    f"cannot create app {self.name!r}",
                    "an ingress needs the port the app listens on",
                    "add --port",
                )


def _render(templates: Path, name: str, values: dict[str, str]) -> str:
    source = templates / name
    if not source.is_file():
        raise KubaniError(
            f"template {source} is missing",
            "app new builds apps from the tree's templates/app folder",
            "restore it from the Kubani project",
        )
    try:
        return Template(source.read_text()).substitute(values)
    except (KeyError, ValueError) as exc:
        raise KubaniError(
            f"template {source} cannot be filled in",
            f"unknown placeholder {exc}",
            "fix the template",
        ) from exc


def render_app(spec: AppSpec, templates: Path, *, joins: bool = False) -> dict[str, str]:
    """File name -> content of the new app folder. ``joins``: the namespace is another
    app's already, with its Namespace object and policies, which this one must not repeat."""
    values = {
        "name": spec.name,
        "namespace": spec.target_namespace,
        "image": spec.image,
        "replicas": str(spec.replicas),
        "port": str(spec.port or ""),
        "host": spec.ingress or "",
    }
    files = {"deployment.yaml": _render(templates, "deployment.yaml", values)}
    if not joins:
        files["namespace.yaml"] = _render(templates, "namespace.yaml", values)
    patches = []
    if spec.port is not None:
        files["service.yaml"] = _render(templates, "service.yaml", values)
        files["port-patch.yaml"] = _render(templates, "port-patch.yaml", values)
        patches.append("port-patch.yaml")
    if spec.ingress is not None:
        files["ingress.yaml"] = _render(templates, "ingress.yaml", values)
    if spec.gpu:
        files["gpu-patch.yaml"] = _render(templates, "gpu-patch.yaml", values)
        patches.append("gpu-patch.yaml")
    resources = [
        f
        for f in ("namespace.yaml", "deployment.yaml", "service.yaml", "ingress.yaml")
        if f in files
    ]
    kustomization: dict[str, object] = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": spec.target_namespace,
        "resources": resources,
    }
    if not joins:
        kustomization["components"] = [POLICIES]
    if patches:
        kustomization["patches"] = [{"path": p} for p in patches]
    files["kustomization.yaml"] = (
        f"# Created by `cluster-mgr app new {spec.name}`.\n"
        + yaml.safe_dump(kustomization, sort_keys=False)
    )
    return files


def overlay_entries(text: str) -> list[str]:
    """What the apps overlay's ``resources:`` lists."""
    try:
        document = safe_load(text)
    except yaml.YAMLError as exc:
        raise KubaniError(
            f"cannot read {OVERLAY}",
            f"it is not valid YAML: {' '.join(str(exc).split())}",
            "fix the file by hand",
        ) from None
    resources = document.get("resources") if isinstance(document, dict) else None
    if (document is not None and not isinstance(document, dict)) or not isinstance(
        resources, list | None
    ):
        raise KubaniError(
            f"cannot read {OVERLAY}",
            "it is not a kustomization with a resources: list",
            "fix the file by hand",
        )
    return [str(r) for r in resources or []]


def add_to_overlay(text: str, entry: str) -> str:
    """Append ``entry`` after the last active item of ``resources:``, keeping the rest."""
    lines = text.splitlines(keepends=True)
    start = next(
        (i for i, line in enumerate(lines) if re.match(r"^resources:\s*(#.*)?$", line)), None
    )
    if start is None:
        raise KubaniError(
            "cannot add the app to the apps overlay",
            "its kustomization.yaml has no block-style resources: list",
            f"add '  - {entry}' under resources: by hand",
        )
    last, indent = start, "  "
    for index in range(start + 1, len(lines)):
        line = lines[index]
        item = re.match(r"^(\s*)-\s", line)
        if item:
            last, indent = index, item.group(1)
        elif (
            line.strip() and not line.lstrip().startswith("#") and not line.startswith((" ", "\t"))
        ):
            break
    new_line = f"{indent}- {entry}\n"
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines.insert(last + 1, new_line)
    result = "".join(lines)
    if entry not in overlay_entries(result):
        raise KubaniError(
            "cannot add the app to the apps overlay",
            "the edited file did not parse back with the new entry",
            f"add '  - {entry}' under resources: by hand",
        )
    return result


def create_app(tree: Path, spec: AppSpec) -> Path:
    from kubani.inventory.store import atomic_write

    spec.check()
    target = tree / "apps" / "base" / spec.name
    overlay = tree / OVERLAY
    entry = f"../../base/{spec.name}"
    if target.exists():
        raise KubaniError(
            f"cannot create app {spec.name!r}",
            f"{target} already exists",
            "choose another name, or edit that app",
        )
    if not overlay.is_file():
        raise KubaniError(
            f"cannot create app {spec.name!r}", f"{overlay} is missing", "restore the apps overlay"
        )
    overlay_text = overlay.read_text()
    if entry in overlay_entries(overlay_text):
        raise KubaniError(
            f"cannot create app {spec.name!r}",
            f"the apps overlay already lists {entry}",
            "choose another name",
        )
    joins = spec.target_namespace in _namespaces_built(overlay.parent)
    files = render_app(spec, tree / "templates" / "app", joins=joins)
    new_overlay = add_to_overlay(overlay_text, entry)
    # Staged beside its final place, so relative paths (the policies component) resolve.
    staging = Path(tempfile.mkdtemp(prefix=f".{spec.name}-", dir=target.parent))
    try:
        for name, content in files.items():
            (staging / name).write_text(content)
        _check_builds(staging, spec.name)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    listed = False
    try:
        _check_overlay_builds(overlay.parent, new_overlay, spec.name)
        atomic_write(overlay, new_overlay.encode(), backup=False)
        listed = True
    finally:
        if not listed:  # the folder goes with any failure, an interrupt included
            shutil.rmtree(target, ignore_errors=True)
    return target


def _kustomize(folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )


def _namespaces_built(folder: Path) -> set[str]:
    """The Namespaces the apps overlay makes now (none when it does not build: the check
    of the overlay with the new app then says why)."""
    result = _kustomize(folder)
    if result.returncode != 0:
        return set()
    try:
        objects = yaml.load_all(result.stdout, Loader=yaml.CSafeLoader)
        return {
            str(obj["metadata"]["name"])
            for obj in objects
            if isinstance(obj, dict)
            and obj.get("kind") == "Namespace"
            and isinstance(obj.get("metadata"), dict)
            and "name" in obj["metadata"]
        }
    except yaml.YAMLError:
        return set()


def _check_overlay_builds(folder: Path, new_overlay: str, name: str) -> None:
    """The apps overlay, with the new app listed, still builds: a clash with another app
    (the same object twice) would stop Flux applying every app."""
    check = Path(tempfile.mkdtemp(prefix=".check-", dir=folder.parent))
    try:
        (check / "kustomization.yaml").write_text(new_overlay)
        result = _kustomize(check)
    finally:
        shutil.rmtree(check, ignore_errors=True)
    if result.returncode != 0:
        from kubani.gitops.validate import kustomize_error

        raise KubaniError(
            f"cannot add the app {name!r} to the apps overlay",
            "the overlay would no longer build: " + " ".join(kustomize_error(result).split()),
            "choose another name or namespace, or merge it into the app it clashes with",
        )


def _check_builds(folder: Path, name: str) -> None:
    result = _kustomize(folder)
    if result.returncode != 0:
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        raise KubaniError(
            f"the new app {name!r} does not build",
            lines[-1] if lines else "kustomize failed",
            "check the templates in templates/app",
        )
