"""``gitops validate``: build every kustomization, check every object, every reference.

A broken kustomization blocks every app behind it, so the tree is checked the way Flux
will read it: each folder with a kustomization.yaml is built with kustomize
(``kubectl kustomize``), each object is validated against the Kubernetes schemas
(kubernetes-validate, strict) or Kubani's Flux schemas, every Flux ``dependsOn``,
``sourceRef`` and ``path`` must resolve, and no Secret may be committed unencrypted.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from kubani.errors import KubaniError
from kubani.gitops.flux_schema import FLUX_GROUPS, SCHEMAS

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SKIPPED_FOLDERS = frozenset({"templates"})
DEFAULT_KUBERNETES_VERSION = "1.31"

# Objects the gitops role creates in the cluster, which the tree may refer to.
ROLE_OBJECTS = frozenset(
    {
        ("GitRepository", "flux-system", "flux-system"),
        ("Kustomization", "flux-system", "flux-system"),
    }
)


@dataclass(frozen=True, order=True)
class Finding:
    file: str
    obj: str
    message: str

    def line(self) -> str:
        where = f"{self.file}: {self.obj}" if self.obj else self.file
        return f"{where}: {self.message}"


@dataclass
class Report:
    root: Path
    findings: list[Finding] = field(default_factory=list)
    kustomizations: int = 0
    objects: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class _Built:
    root: Path
    obj: dict[str, Any]


def describe(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata") or {}
    name = meta.get("name", "?")
    namespace = meta.get("namespace")
    return (
        f"{obj.get('kind', '?')} {namespace}/{name}" if namespace else f"{obj.get('kind')} {name}"
    )


def repo_root(tree: Path) -> Path:
    """Flux paths are relative to the Git repository's root."""
    for folder in (tree, *tree.parents):
        if (folder / ".git").exists():
            return folder
    return tree.parent


class Validator:
    def __init__(self, tree: Path, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> None:
        if not tree.is_dir():
            raise KubaniError(
                f"cannot validate {tree}",
                "it is not a folder",
                "pass the GitOps tree with --path",
            )
        self.tree = tree.resolve()
        self.repo = repo_root(self.tree)
        self.version = kubernetes_version
        self.report = Report(self.tree)
        self._sources: dict[tuple[str, str], list[Path]] = {}
        self._unbuildable: set[Path] = set()  # components and files that are not YAML

    def run(self) -> Report:
        files = sorted(self._yaml_files())
        for path in files:
            self._scan_file(path)
        roots = [
            p.parent for p in files if p.name in KUSTOMIZATION_FILES and p not in self._unbuildable
        ]
        self.report.kustomizations = len(roots)
        built = self._build_all(roots)
        unique = self._dedupe(built)
        self.report.objects = len(unique)
        for item in unique:
            self._check_schema(item)
        self._check_references(unique)
        self.report.findings = sorted(set(self.report.findings))
        return self.report

    # ---- files ---------------------------------------------------------------------

    def _yaml_files(self) -> Iterator[Path]:
        for path in self.tree.rglob("*"):
            relative = path.relative_to(self.tree)
            if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in relative.parts):
                continue
            if path.is_file() and (
                path.suffix in (".yaml", ".yml") or path.name == "Kustomization"
            ):
                yield path

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.repo))
        except ValueError:
            return str(path)

    def _add(self, path: Path, obj: str, message: str) -> None:
        self.report.findings.append(Finding(self._relative(path), obj, message))

    def _scan_file(self, path: Path) -> None:
        try:
            documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
        except yaml.YAMLError as exc:
            self._add(path, "", f"not valid YAML: {' '.join(str(exc).split())}")
            self._unbuildable.add(path)
            return
        for document in documents:
            if not isinstance(document, dict):
                self._add(path, "", "a YAML document that is not a mapping")
                continue
            kind = str(document.get("kind", ""))
            if kind == "Component":
                self._unbuildable.add(path)
            name = str((document.get("metadata") or {}).get("name", ""))
            self._sources.setdefault((kind, name), []).append(path)
            if kind == "Secret" and not _encrypted(document):
                self._add(
                    path,
                    describe(document),
                    "Secret is not encrypted; encrypt it with `cluster-mgr secrets encrypt "
                    f"{self._relative(path)}` (SOPS) before committing",
                )

    # ---- building --------------------------------------------------------------------

    def _build_all(self, roots: list[Path]) -> list[_Built]:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise KubaniError(
                "cannot build the kustomizations",
                "kubectl is not on PATH (its `kubectl kustomize` is the kustomize Flux uses)",
                "install kubectl (mise install, or your package manager)",
            )
        with ThreadPoolExecutor(max_workers=8) as pool:
            results = list(pool.map(lambda root: self._build(kubectl, root), roots))
        return [item for result in results for item in result]

    def _build(self, kubectl: str, root: Path) -> list[_Built]:
        result = subprocess.run(
            [kubectl, "kustomize", str(root)], capture_output=True, text=True, check=False
        )
        kustomization = next(root / n for n in KUSTOMIZATION_FILES if (root / n).exists())
        if result.returncode != 0:
            self._add(kustomization, "", f"kustomize build failed: {_kustomize_error(result)}")
            return []
        objects = [d for d in yaml.safe_load_all(result.stdout) if isinstance(d, dict)]
        return [_Built(root, obj) for obj in objects]

    @staticmethod
    def _dedupe(built: Iterable[_Built]) -> list[_Built]:
        seen: set[str] = set()
        unique = []
        for item in built:
            key = yaml.safe_dump(item.obj, sort_keys=True)
            if key not in seen:
                seen.add(key)
                unique.append(item)
        return unique

    def _file_of(self, item: _Built) -> Path:
        kind = str(item.obj.get("kind", ""))
        name = str((item.obj.get("metadata") or {}).get("name", ""))
        candidates = self._sources.get((kind, name), [])
        inside = [c for c in candidates if c.is_relative_to(item.root)]
        if inside or candidates:
            return (inside or candidates)[0]
        return next(item.root / n for n in KUSTOMIZATION_FILES if (item.root / n).exists())

    # ---- schemas ---------------------------------------------------------------------

    def _check_schema(self, item: _Built) -> None:
        obj = item.obj
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""
        if group in FLUX_GROUPS:
            schema = SCHEMAS.get((api_version, str(obj.get("kind"))))
            if schema is None:
                self._add(
                    self._file_of(item),
                    describe(obj),
                    f"{api_version} {obj.get('kind')} is not a Flux kind Kubani knows; "
                    "check apiVersion and kind",
                )
                return
            for message in _jsonschema_errors(obj, schema):
                self._add(self._file_of(item), describe(obj), message)
            return
        import kubernetes_validate

        if _encrypted(obj):
            # Flux decrypts before applying; the sops block is never sent to the API.
            obj = {k: v for k, v in obj.items() if k != "sops"}
        try:
            kubernetes_validate.validate(obj, self.version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return  # a custom resource whose schema Kubani does not carry
        except kubernetes_validate.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            message = f"{where}: {exc.message}" if where else exc.message
            self._add(self._file_of(item), describe(obj), message)
        except kubernetes_validate.InvalidSchemaError as exc:
            self._add(self._file_of(item), describe(obj), f"cannot be checked: {exc}")

    # ---- references --------------------------------------------------------------------

    def _check_references(self, built: list[_Built]) -> None:
        present = set(ROLE_OBJECTS)
        for item in built:
            meta = item.obj.get("metadata") or {}
            present.add(
                (
                    str(item.obj.get("kind")),
                    str(meta.get("namespace") or "default"),
                    str(meta.get("name")),
                )
            )
        for item in built:
            obj = item.obj
            api_version = str(obj.get("apiVersion", ""))
            if api_version.split("/", maxsplit=1)[0] not in FLUX_GROUPS:
                continue
            namespace = (obj.get("metadata") or {}).get("namespace") or "default"
            spec = obj.get("spec") or {}
            kind = obj.get("kind")
            for dependency in spec.get("dependsOn") or []:
                if not isinstance(dependency, dict):
                    continue
                wanted = (
                    str(kind),
                    dependency.get("namespace") or namespace,
                    dependency.get("name"),
                )
                if wanted not in present:
                    self._add(
                        self._file_of(item),
                        describe(obj),
                        f"dependsOn names {kind} {wanted[1]}/{wanted[2]}, which is not in the tree",
                    )
            for ref in _source_refs(obj):
                wanted = (
                    str(ref.get("kind")),
                    str(ref.get("namespace") or namespace),
                    str(ref.get("name")),
                )
                if wanted not in present:
                    self._add(
                        self._file_of(item),
                        describe(obj),
                        f"sourceRef names {wanted[0]} {wanted[1]}/{wanted[2]}, "
                        "which is not in the tree",
                    )
            if kind == "Kustomization" and isinstance(spec.get("path"), str):
                target = (self.repo / spec["path"]).resolve()
                if not target.is_dir():
                    self._add(
                        self._file_of(item),
                        describe(obj),
                        f"path {spec['path']} is not a folder of the repository ({self.repo})",
                    )


def _kustomize_error(result: subprocess.CompletedProcess[str]) -> str:
    """kustomize's error, down to the resource that failed and the reason."""
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    text = lines[-1] if lines else f"kustomize exited {result.returncode}"
    quoted = re.search(r'err="(.*)"\s*$', text)
    text = quoted.group(1) if quoted else text.removeprefix("Error: ").removeprefix("error: ")
    resources = re.findall(r"accumulating resources from '([^']+)'", text)
    if resources:
        return f"resource {resources[-1]!r}: {text.rsplit(': ', 1)[-1]}"
    return text


def _source_refs(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj.get("spec") or {}
    refs = [spec.get("sourceRef")]
    chart = (spec.get("chart") or {}).get("spec") or {}
    refs.append(chart.get("sourceRef"))
    return [r for r in refs if isinstance(r, dict)]


def _jsonschema_errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    messages = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        where = ".".join(str(p) for p in error.absolute_path)
        messages.append(f"{where}: {error.message}" if where else error.message)
    return messages


def _encrypted(document: dict[str, Any]) -> bool:
    """A SOPS file carries a ``sops`` block with the encrypted data key and a MAC."""
    sops = document.get("sops")
    return isinstance(sops, dict) and bool(sops.get("mac"))


def validate_tree(tree: Path, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> Report:
    return Validator(tree, kubernetes_version).run()
