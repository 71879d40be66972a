"""``gitops validate``: build every kustomization, check every object, every reference.

A broken kustomization blocks every app behind it, so the tree is checked the way Flux
will read it: each folder with a kustomization.yaml is built with kustomize
(``kubectl kustomize``); a folder without one is read as Flux reads it (every manifest in
it, e.g. ``clusters/<env>/*.yaml``); each object is validated against the Kubernetes
schemas (kubernetes-validate, strict) or Kubani's Flux schemas, every Flux ``dependsOn``,
``sourceRef``, ``chartRef`` and ``path`` must resolve, and no Secret may be committed
unencrypted. A tree with nothing to check is an error, not "valid".
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from kubani import userfiles
from kubani.errors import KubaniError
from kubani.gitops import patches
from kubani.gitops.flux_schema import flux_groups, generated_from, served_versions, strict_schema
from kubani.gitops.names import name_problem, namespace_problem
from kubani.kube.fields import at, entries
from kubani.yamlsafe import ReadableValues, safe_load, safe_load_all

KUSTOMIZATION_FILES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
SKIPPED_FOLDERS = frozenset({"templates"})
# A build of a large tree takes seconds; one that reads a pipe or a device never ends.
KUSTOMIZE_TIMEOUT_S = 120.0
DEFAULT_KUBERNETES_VERSION = "1.31"

# Objects the gitops role creates in the cluster, which the tree may refer to.
ROLE_OBJECTS = frozenset(
    {
        ("GitRepository", "flux-system", "flux-system"),
        ("Kustomization", "flux-system", "flux-system"),
    }
)
# What other bootstraps make instead of the GitRepository (`flux bootstrap` from an OCI
# artifact or a bucket, the Flux Operator's FluxInstance sync): trees made for them refer
# to it. Its paths are the artifact's, not this repository's: they are not checked.
BOOTSTRAP_SOURCES = frozenset(
    {("OCIRepository", "flux-system", "flux-system"), ("Bucket", "flux-system", "flux-system")}
)


def _untagged(loader: yaml.SafeLoader, _suffix: str, node: yaml.Node) -> Any:
    """A value under an application's own tag (``!env_var NAME`` in a config file that a
    configMapGenerator packs): what go-yaml reads it as, its plain value."""
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node) if isinstance(node, yaml.ScalarNode) else None


class _RepositoryLoader(ReadableValues, yaml.SafeLoader):
    """Reads repository files as kustomize (go-yaml) does: an anchor defined again takes
    the new value instead of failing the file, and a local tag (``!name``) is no error."""

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        if not self.check_event(yaml.AliasEvent):
            # types-pyyaml leaves the parser's peek_event unannotated.
            anchor = getattr(self.peek_event(), "anchor", None)  # type: ignore[no-untyped-call]
            if anchor is not None:
                self.anchors.pop(anchor, None)
        node: yaml.Node | None = super().compose_node(parent, index)
        return node


_RepositoryLoader.add_multi_constructor("!", _untagged)


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
    plain_folders: int = 0  # folders read as Flux reads one without a kustomization.yaml
    objects: int = 0

    @property
    def ok(self) -> bool:
        return not self.findings


@dataclass(frozen=True)
class _Built:
    root: Path
    obj: dict[str, Any]


def _shown(value: Any) -> str:
    """As written, unless it holds what a terminal would act on or hide (escapes, a
    right-to-left override): then quoted with those escaped."""
    text = str(value)
    return text if text.isprintable() else repr(text)


def describe(obj: dict[str, Any]) -> str:
    meta = at(obj, "metadata")
    name = _shown(meta.get("name", "?"))
    kind = _shown(obj.get("kind", "?"))
    namespace = meta.get("namespace")
    return f"{kind} {_shown(namespace)}/{name}" if namespace else f"{kind} {name}"


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
        # Without .git the repository's root is a guess (the tree's parent, as for Kubani's
        # own gitops/): a path is looked for there and in the tree itself.
        self._roots = [self.repo] if (self.repo / ".git").exists() else [self.repo, self.tree]
        self.version = kubernetes_version
        self.report = Report(self.tree)
        self._sources: dict[tuple[str, str], list[Path]] = {}
        self._unbuildable: set[Path] = set()  # components and files that are not YAML
        self._documents: dict[Path, list[Any]] = {}
        self._failed: dict[Path, str] = {}  # kustomization folder -> kustomize's error
        self._variables: dict[Path, dict[str, str]] = {}  # folder -> its postBuild variables
        self._endings: dict[str, Path | None] = {}  # path -> the one folder ending in it

    def run(self) -> Report:
        files = sorted(self._yaml_files())
        for path in files:
            self._scan_file(path)
        roots = [
            p.parent for p in files if p.name in KUSTOMIZATION_FILES and p not in self._unbuildable
        ]
        self.report.kustomizations = len(roots)
        built = self._build_all(roots) if roots else []
        plain = self._plain_folders(files, set(roots))
        self.report.plain_folders = len(plain)
        for folder, objects in plain.items():
            built += [_Built(folder, obj) for obj in objects]
        built += self._rebuilt_with_components(built)
        self._blame_dependencies(built)
        unique = self._dedupe(built)
        self.report.objects = len(unique)
        # Twice: the first pass gives child Kustomizations the patches their parent adds to
        # them; the second applies those to what the children build.
        unique = self._patched_by_appliers(self._patched_by_appliers(unique))
        self._variables = self._post_build_variables(unique)
        for item in unique:
            self._check_schema(item)
        self._check_references(unique)
        if not unique and not self.report.findings:
            self._add(
                self.tree,
                "",
                "nothing to check: no kustomization.yaml and no Kubernetes manifests here "
                "(pass the GitOps tree with --path)",
            )
        self.report.findings = sorted(set(self.report.findings))
        return self.report

    def _plain_folders(self, files: list[Path], roots: set[Path]) -> dict[Path, list[Any]]:
        """Folders without a kustomization file, read as Flux reads one: every Kubernetes
        manifest in it (a folder under it is read on its own; duplicates are dropped later).
        A folder inside a kustomization's own tree is left to that build."""
        found: dict[Path, list[Any]] = {}
        for path in files:
            folder = path.parent
            if folder in roots or path.name in KUSTOMIZATION_FILES or path in self._unbuildable:
                continue
            if any(folder.is_relative_to(root) for root in roots):
                continue
            manifests = [d for d in self._documents.get(path, []) if _is_manifest(d)]
            if manifests:
                found.setdefault(folder, []).extend(manifests)
        return found

    # ---- files ---------------------------------------------------------------------

    def _yaml_files(self) -> Iterator[Path]:
        """The tree's YAML files; one that is not a regular file (a pipe, a device, a socket,
        a broken link) is a finding: opening it could wait forever, and Flux cannot use it."""
        for path in self.tree.rglob("*"):
            relative = path.relative_to(self.tree)
            if any(part.startswith(".") or part in SKIPPED_FOLDERS for part in relative.parts):
                continue
            if path.suffix not in (".yaml", ".yml") and path.name != "Kustomization":
                continue
            if path.is_file():
                yield path
            elif not path.is_dir():
                self._add(path, "", "not a regular file (a pipe, a device, a broken link?)")

    def _relative(self, path: Path) -> str:
        try:
            return str(path.relative_to(self.repo))
        except ValueError:
            return str(path)

    def _add(self, path: Path, obj: str, message: str) -> None:
        self.report.findings.append(Finding(self._relative(path), obj, message))

    def _scan_file(self, path: Path) -> None:
        try:
            text = userfiles.read_text(path)
            documents = [d for d in yaml.load_all(text, Loader=_RepositoryLoader) if d is not None]
            self._documents[path] = documents
        except (OSError, UnicodeDecodeError) as exc:
            why = "it is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc)
            self._add(path, "", f"cannot be read: {why}")
            self._unbuildable.add(path)
            return
        except yaml.YAMLError as exc:
            self._unbuildable.add(path)
            # A template ({{ .app_name }}) or an application's own file (mkdocs.yml, Helm
            # values with ${VAR} in a flow list) is not YAML Flux ever reads as YAML.
            if _manifest_shaped(text) and not _templated(text):
                self._add(path, "", f"not valid YAML: {' '.join(str(exc).split())}")
            return
        holds_manifests = any(_is_manifest(d) for d in documents)
        for document in documents:
            if not isinstance(document, dict):
                # In a file of manifests, a stray list or value; a file of none is some
                # application's data (a configMapGenerator's), which kustomize reports
                # itself if it is ever listed as a resource.
                if holds_manifests:
                    self._add(path, "", "a YAML document that is not a mapping")
                continue
            kind = str(document.get("kind", ""))
            if kind == "Component":
                self._unbuildable.add(path)
            name = str(at(document, "metadata").get("name", ""))
            self._sources.setdefault((kind, name), []).append(path)
            if kind == "Secret" and not _encrypted(document) and not _only_references(document):
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

    def _rebuilt_with_components(self, built: list[_Built]) -> list[_Built]:
        """Folders that fail to build alone, built again as Flux builds them for a Flux
        Kustomization that lists ``spec.components``: with those components added to the
        folder's kustomization (its patches may target what they add)."""
        kubectl = shutil.which("kubectl")
        rebuilt: list[_Built] = []
        failed = {root.resolve(): root for root in self._failed}
        for item in built:
            spec = at(item.obj, "spec")
            components = _texts(spec.get("components"))
            if item.obj.get("kind") != "Kustomization" or not _is_flux(item.obj) or not components:
                continue
            folder = self._applied_folder(spec)
            root = failed.get(folder) if folder is not None else None
            if root is None or kubectl is None:
                continue
            objects = self._build_with(kubectl, root, components)
            if objects is not None:
                del self._failed[root]
                del failed[root.resolve()]
                rebuilt += [_Built(root, obj) for obj in objects]
        return rebuilt

    def _build_with(self, kubectl: str, root: Path, components: list[str]) -> list[Any] | None:
        """``root`` built with ``components`` added, in a scratch copy of the repository
        (the tree itself is never written to); None if that fails too."""
        import tempfile

        base = next((b for b in (*self._roots, self.tree) if root.is_relative_to(b)), None)
        if base is None:
            return None
        with tempfile.TemporaryDirectory(prefix="kubani-validate-") as scratch:
            copy = Path(scratch) / "repo"
            shutil.copytree(base, copy, symlinks=True, ignore=shutil.ignore_patterns(".git"))
            target = copy / root.relative_to(base)
            kustomization = next(target / n for n in KUSTOMIZATION_FILES if (target / n).exists())
            try:
                data = safe_load(kustomization.read_text())
            except yaml.YAMLError:
                return None
            if not isinstance(data, dict):
                return None
            data["components"] = [*_texts(data.get("components")), *components]
            kustomization.write_text(yaml.safe_dump(data, sort_keys=False))
            try:
                result = _kustomize(kubectl, target)
                documents = safe_load_all(result.stdout) if result.returncode == 0 else None
            except (subprocess.TimeoutExpired, yaml.YAMLError):
                return None
        return [d for d in documents if isinstance(d, dict)] if documents is not None else None

    def _build(self, kubectl: str, root: Path) -> list[_Built]:
        try:
            result = _kustomize(kubectl, root)
        except subprocess.TimeoutExpired:
            self._failed[root] = f"it did not finish within {KUSTOMIZE_TIMEOUT_S:.0f} s"
            return []
        if result.returncode != 0:
            self._failed[root] = kustomize_error(result)
            return []
        try:
            documents = safe_load_all(result.stdout)
        except yaml.YAMLError as exc:  # kustomize writes what it read; this reader may not
            self._failed[root] = f"its output cannot be read back: {' '.join(str(exc).split())}"
            return []
        return [_Built(root, obj) for obj in documents if isinstance(obj, dict)]

    def _blame_dependencies(self, built: list[_Built]) -> None:
        """A kustomization fails when one it includes fails: the error is reported once,
        where it is, and the others say which dependency breaks them. One that inflates Helm
        charts is built that way by some other tool (a bootstrap script) unless a Flux
        Kustomization of the tree applies it, or one that fails includes it."""
        applied = {
            self._applied_folder(at(item.obj, "spec"))
            for item in built
            if item.obj.get("kind") == "Kustomization" and _is_flux(item.obj)
        }
        for root, error in sorted(self._failed.items()):
            kustomization = next(root / n for n in KUSTOMIZATION_FILES if (root / n).exists())
            broken = [
                other for other in self._failed if other != root and _mentions(error, root, other)
            ]
            included = any(
                _mentions(other_error, other, root)
                for other, other_error in self._failed.items()
                if other != root
            )
            if _HELM_CHARTS in error and root.resolve() not in applied and not included:
                continue
            if broken:
                names = ", ".join(self._relative(b) for b in sorted(broken))
                self._add(
                    kustomization, "", f"cannot be built because {names} fails (reported there)"
                )
            else:
                self._add(kustomization, "", f"kustomize build failed: {_explained(error)}")

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
        name = str(at(item.obj, "metadata").get("name", ""))
        candidates = self._sources.get((kind, name), [])
        inside = [c for c in candidates if c.is_relative_to(item.root)]
        if inside or candidates:
            return (inside or candidates)[0]
        return next(item.root / n for n in KUSTOMIZATION_FILES if (item.root / n).exists())

    # ---- the applying Kustomization's patches --------------------------------------------

    def _in_repository(self, path: str) -> Path | None:
        """The folder ``path`` names from the repository's root, if there is one."""
        if "\0" in path:
            return None
        for root in self._roots:
            folder = (root / path).resolve()
            if folder.is_dir():
                return folder
        return None

    def _applied_folder(self, spec: dict[str, Any]) -> Path | None:
        """The folder a Flux Kustomization's path names: in the repository, else in the
        tree, else the one folder of the repository that ends in it (an OCI artifact pushed
        from a subfolder); None when that does not settle it."""
        path = spec.get("path")
        if not isinstance(path, str) or "\0" in path or ".." in Path(path).parts:
            return None
        for base in (*self._roots, self.tree):
            folder = (base / path).resolve()
            if folder.is_dir():
                return folder
        relative = Path(path.strip()).as_posix().removeprefix("./").strip("/")
        if not relative or relative == "." or _GLOB.search(relative):
            return None
        if relative not in self._endings:  # one walk of the repository per path, at most
            ending = [
                f for f in self.repo.glob(f"**/{relative}") if f.is_dir() and ".git" not in f.parts
            ]
            self._endings[relative] = ending[0].resolve() if len(ending) == 1 else None
        return self._endings[relative]

    def _patched_by_appliers(self, built: list[_Built]) -> list[_Built]:
        """Each object as the Flux Kustomization that applies its folder patches it."""
        by_folder: dict[Path, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
        for item in built:
            obj = item.obj
            if obj.get("kind") != "Kustomization" or not _is_flux(obj):
                continue
            folder = self._applied_folder(at(obj, "spec"))
            found = patches.strategic_patches(obj)
            if folder is not None and found:
                by_folder.setdefault(folder, []).extend(found)
        if not by_folder:
            return built
        out = []
        for item in built:
            obj = item.obj
            for target, patch in by_folder.get(item.root.resolve(), []):
                if patches.selects(target, patch, obj):
                    obj = patches.merged(obj, patch)
            out.append(_Built(item.root, obj))
        return out

    # ---- post-build substitution ---------------------------------------------------------

    def _post_build_variables(self, built: list[_Built]) -> dict[Path, dict[str, str]]:
        """For each folder a Flux Kustomization of this repository applies: the variables
        its ``postBuild`` substitutes (``substitute``, and ``substituteFrom`` ConfigMaps and
        plain Secrets found in the tree)."""
        data: dict[tuple[str, str, str], dict[str, str]] = {}
        for item in built:
            kind = str(item.obj.get("kind"))
            if kind in ("ConfigMap", "Secret") and not _encrypted(item.obj):
                meta = at(item.obj, "metadata")
                values = {**at(item.obj, "data"), **at(item.obj, "stringData")}
                key = (kind, str(meta.get("namespace") or "default"), str(meta.get("name")))
                data[key] = {str(k): str(v) for k, v in values.items()}
        found: dict[Path, dict[str, str]] = {}
        for item in built:
            obj = item.obj
            spec = at(obj, "spec")
            post_build = spec.get("postBuild")
            if obj.get("kind") != "Kustomization" or not isinstance(post_build, dict):
                continue
            if not isinstance(spec.get("path"), str) or "\0" in spec["path"]:
                continue  # the schema check reports it
            namespace = str(at(obj, "metadata").get("namespace") or "default")
            variables: dict[str, str] = {}
            for ref in entries(post_build.get("substituteFrom")):
                key = (str(ref.get("kind")), namespace, str(ref.get("name")))
                variables.update(data.get(key, {}))
            substitute = post_build.get("substitute")
            if isinstance(substitute, dict):
                variables.update({str(k): str(v) for k, v in substitute.items()})
            folder = self._applied_folder(spec)
            if folder is not None:
                found[folder] = variables
        return found

    def _substituted(self, item: _Built) -> dict[str, Any]:
        """The object as Flux applies it: ``${VAR}`` replaced by the variables of the
        Kustomization that applies its folder (unknown ones stay, and are not judged)."""
        variables = self._variables.get(item.root.resolve())
        annotations = at(item.obj, "metadata", "annotations")
        if variables is None or annotations.get(_SUBSTITUTE_ANNOTATION) == "disabled":
            return item.obj
        substituted: dict[str, Any] = _substitute(item.obj, variables)
        return substituted

    # ---- schemas ---------------------------------------------------------------------

    def _check_schema(self, item: _Built) -> None:
        obj = item.obj
        names = {key: obj.get(key) for key in ("apiVersion", "kind")}
        unnamed = [key for key, value in names.items() if not isinstance(value, str) or not value]
        if unnamed:
            self._add(
                self._file_of(item),
                describe(obj),
                f"{' and '.join(unnamed)} missing or not text: Flux cannot apply it",
            )
            return
        api_version = str(obj["apiVersion"])
        applied = self._substituted(item)
        for message in _name_problems(applied, api_version, str(obj["kind"])):
            self._add(self._file_of(item), describe(obj), message)
        group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""
        if group in flux_groups():
            kind = str(obj.get("kind"))
            schema = strict_schema(api_version, kind)
            if schema is None:
                served = served_versions(group, kind)
                sources = ", ".join(f"{m} {v}" for m, v in sorted(generated_from().items()))
                self._add(
                    self._file_of(item),
                    describe(obj),
                    f"{api_version} {kind} is not served by Flux ({sources}); "
                    + (
                        f"use {', '.join(f'{group}/{v}' for v in served)}"
                        if served
                        else "check apiVersion and kind"
                    ),
                )
                return
            for message in _jsonschema_errors(applied, schema):
                self._add(self._file_of(item), describe(obj), message)
            return
        import kubernetes_validate

        obj = applied
        if _encrypted(obj):
            # Flux decrypts before applying; the sops block is never sent to the API.
            obj = {k: v for k, v in obj.items() if k != "sops"}
        try:
            kubernetes_validate.validate(obj, self.version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            return  # a custom resource whose schema Kubani does not carry
        except kubernetes_validate.ValidationError as exc:
            if _unresolved(exc.instance):
                return  # a variable Flux fills in from outside the tree
            where = ".".join(str(p) for p in exc.path)
            message = _shortened(f"{where}: {exc.message}" if where else exc.message)
            self._add(self._file_of(item), describe(obj), message)
        except kubernetes_validate.InvalidSchemaError as exc:
            self._add(self._file_of(item), describe(obj), f"cannot be checked: {exc}")

    # ---- references --------------------------------------------------------------------

    def _check_references(self, built: list[_Built]) -> None:
        # (kind, name) -> the namespaces it is in; None for an object written without one,
        # whose namespace is the applier's (a Flux Kustomization's targetNamespace).
        present: dict[tuple[str, str], set[str | None]] = {}
        generators: dict[tuple[str, str], dict[str, Any]] = {}  # (namespace, artifact) ->
        found: list[tuple[str, str | None, str]] = [*ROLE_OBJECTS, *BOOTSTRAP_SOURCES]
        for item in built:
            meta = at(item.obj, "metadata")
            namespace = meta.get("namespace")
            found.append(
                (
                    str(item.obj.get("kind")),
                    str(namespace) if namespace else None,
                    str(meta.get("name")),
                )
            )
            for artifact in _generated_artifacts(item.obj):
                found.append(artifact)
                generators[artifact[1:]] = item.obj
        for kind_found, namespace_found, name_found in found:
            present.setdefault((kind_found, name_found), set()).add(namespace_found)

        def missing(kind: str, namespace: str | None, name: str) -> bool:
            namespaces = present.get((kind, name), set())
            anywhere = namespace is None or None in namespaces
            return not namespaces or not (anywhere or namespace in namespaces)

        def shown(namespace: str | None, name: str) -> str:
            return f"{namespace}/{name}" if namespace else name

        for item in built:
            obj = item.obj
            api_version = str(obj.get("apiVersion", ""))
            if api_version.split("/", maxsplit=1)[0] not in flux_groups():
                continue
            own = at(obj, "metadata").get("namespace")
            namespace = str(own) if own else None
            spec = at(obj, "spec")
            kind = str(obj.get("kind"))
            for dependency in entries(spec.get("dependsOn")):
                wanted = (dependency.get("namespace") or namespace, str(dependency.get("name")))
                if missing(kind, *wanted):
                    self._add(
                        self._file_of(item),
                        describe(obj),
                        f"dependsOn names {kind} {shown(*wanted)}, which is not in the tree",
                    )
            for field_name, ref in _source_refs(obj):
                ref_kind = str(ref.get("kind"))
                wanted = (ref.get("namespace") or namespace, str(ref.get("name")))
                if missing(ref_kind, *wanted):
                    self._add(
                        self._file_of(item),
                        describe(obj),
                        f"{field_name} names {ref_kind} {shown(*wanted)}, which is not in the tree",
                    )
            if kind != "Kustomization" or not isinstance(spec.get("path"), str):
                continue
            namespace = namespace or "default"
            path = spec["path"]
            if _reads_this_repository(spec, namespace):
                if self._in_repository(path) is None:
                    self._add(
                        self._file_of(item),
                        describe(obj),
                        f"path {path} is not a folder of the repository ({self.repo})",
                    )
                continue
            ref = at(spec, "sourceRef")
            generator = generators.get(
                (str(ref.get("namespace") or namespace), str(ref.get("name")))
            )
            if ref.get("kind") != "ExternalArtifact" or generator is None or "\0" in path:
                continue
            folders = _repository_folders(generator, str(ref.get("name")), path)
            if folders and not any(self._in_repository(f) for f in folders):
                self._add(
                    self._file_of(item),
                    describe(obj),
                    f"path {path} of artifact {ref.get('name')} is copied from "
                    f"{' or '.join(folders)}, which is not a folder of the repository "
                    f"({self.repo})",
                )


def _kustomize(kubectl: str, folder: Path) -> subprocess.CompletedProcess[str]:
    """``kubectl kustomize`` of a folder as Flux builds it: with no load restrictions (files
    outside the kustomization's folder, within the repository, may be listed)."""
    return subprocess.run(
        [kubectl, "kustomize", "--load-restrictor=LoadRestrictionsNone", str(folder)],
        capture_output=True,
        text=True,
        check=False,
        timeout=KUSTOMIZE_TIMEOUT_S,
    )


def kustomize_error(result: subprocess.CompletedProcess[str]) -> str:
    """kustomize's whole error (it can span lines: a patch's reason under its name)."""
    lines = [line.rstrip() for line in result.stderr.splitlines() if line.strip()]
    if not lines:
        return f"kustomize exited {result.returncode}"
    quoted = [re.search(r'err="(.*)"\s*$', line) for line in lines]
    if any(quoted):
        lines = [m.group(1).replace("\\n", "\n") for m in quoted if m]
    elif lines[0].endswith("err=<"):  # klog's block form: the error's lines, then ">"
        lines = [line.strip() for line in lines[1:] if line.strip() != ">"] or lines
    lines[0] = lines[0].removeprefix("Error: ").removeprefix("error: ")
    return "\n".join(lines)


_HELM_CHARTS = "must specify --enable-helm"  # kustomize's words for a helmCharts generator


def _explained(error: str) -> str:
    """kustomize's error, or what it means where it is cryptic."""
    remote = re.search(r"accumulating resources from '((?:https?|git|ssh)://[^']+)'", error)
    if remote and re.search(r"dial tcp|Could not resolve host|no such host|timeout", error):
        return (
            f"it lists a remote resource, {remote.group(1)}, which could not be fetched "
            "from here (offline, or a wrong address); Flux fetches it when it builds"
        )
    if _HELM_CHARTS in error:
        return (
            "it inflates Helm charts (helmCharts), which Flux's kustomize does not do; "
            "use a HelmRelease"
        )
    return error


def _mentions(error: str, root: Path, other: Path) -> bool:
    """Whether kustomize's ``error`` for ``root`` is about the folder ``other``."""
    for quoted in re.findall(r"'([^']+)'", error):
        candidate = Path(quoted)
        target = candidate if candidate.is_absolute() else (root / candidate)
        try:
            if target.resolve() == other.resolve():
                return True
        except OSError:
            continue
    return str(other) in error


def _is_manifest(document: Any) -> bool:
    return (
        isinstance(document, dict)
        and bool(document.get("apiVersion"))
        and bool(document.get("kind"))
    )


_TOP_LEVEL_KEY = re.compile(r"^(apiVersion|kind|resources|components|bases):", re.M)
_TEMPLATE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}")


def _manifest_shaped(text: str) -> bool:
    """Whether unreadable text was meant as a manifest or a kustomization: it has their
    top-level keys."""
    return bool(_TOP_LEVEL_KEY.search(text))


def _templated(text: str) -> bool:
    """Go or Jinja template markup: a file rendered into a manifest by some other tool."""
    return bool(_TEMPLATE.search(text))


def _texts(value: object) -> list[str]:
    """The strings of a list field (other entries, or a field that is no list, left out)."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _is_flux(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).split("/", maxsplit=1)[0] in flux_groups()


def _source_refs(obj: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The objects a Flux object reads from, with the field that names each."""
    spec = at(obj, "spec")
    chart = at(spec, "chart", "spec")
    refs = [
        ("sourceRef", spec.get("sourceRef")),
        ("chart.spec.sourceRef", chart.get("sourceRef")),
        ("chartRef", spec.get("chartRef")),  # HelmRelease: an OCIRepository or HelmChart
    ]
    return [(name, ref) for name, ref in refs if isinstance(ref, dict)]


# Flux's source-watcher: an ArtifactGenerator makes an ExternalArtifact of each artifact it
# lists, in its own namespace, from files it copies out of its sources.
_GENERATOR = ("source.extensions.fluxcd.io", "ArtifactGenerator")
_GLOB = re.compile(r"[*?\[{]")


def _generated_artifacts(obj: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The ExternalArtifacts an ArtifactGenerator makes, as (kind, namespace, name)."""
    group = str(obj.get("apiVersion", "")).split("/", maxsplit=1)[0]
    if (group, obj.get("kind")) != _GENERATOR:
        return []
    namespace = str(at(obj, "metadata").get("namespace") or "default")
    names = (a.get("name") for a in entries(at(obj, "spec").get("artifacts")))
    return [("ExternalArtifact", namespace, n) for n in names if isinstance(n, str) and n]


def _repository_folders(generator: dict[str, Any], artifact: str, path: str) -> list[str]:
    """The folders of this repository that an artifact's ``path`` is copied from, read off
    the generator's copy operations that take a glob of this repository's files into a
    folder (``@repo/apps/**`` to ``@artifact/apps/``). Empty when its copies cannot be
    followed that way (another source, a single file or folder): nothing is claimed then."""
    spec = at(generator, "spec")
    namespace = str(at(generator, "metadata").get("namespace") or "default")
    ours = {
        str(source.get("alias"))
        for source in entries(spec.get("sources"))
        if _reads_this_repository({"sourceRef": source}, namespace)
    }
    wanted = PurePosixPath(path.strip()).as_posix().removeprefix("./").strip("/")
    wanted = "" if wanted == "." else wanted
    folders = []
    for listed in entries(spec.get("artifacts")):
        if listed.get("name") != artifact:
            continue
        for copy in entries(listed.get("copy")):
            origin, target = str(copy.get("from", "")), str(copy.get("to", ""))
            alias, _, inside = origin.removeprefix("@").partition("/")
            glob = _GLOB.search(inside)
            if alias not in ours or glob is None or not target.startswith("@artifact/"):
                return []
            base = inside[: glob.start()].rsplit("/", 1)[0] if "/" in inside[: glob.start()] else ""
            landing = target.removeprefix("@artifact/").strip("/")
            if not landing or wanted == landing or wanted.startswith(landing + "/"):
                rest = wanted[len(landing) :].strip("/")
                folders.append("/".join(part for part in (base, rest) if part) or ".")
    return folders


def _reads_this_repository(spec: dict[str, Any], namespace: str) -> bool:
    """A Kustomization's path is a folder of its own source: of this repository only when
    that source is the GitRepository the cluster is bootstrapped from."""
    ref = spec.get("sourceRef")
    if not isinstance(ref, dict):
        return False
    return (str(ref.get("kind")), str(ref.get("namespace") or namespace), str(ref.get("name"))) in {
        (kind, ns, name) for kind, ns, name in ROLE_OBJECTS if kind == "GitRepository"
    }


def _jsonschema_errors(obj: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(schema)
    messages = []
    for error in sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path)):
        if _unresolved(error.instance):
            continue  # a variable Flux fills in from outside the tree
        where = ".".join(str(p) for p in error.absolute_path)
        messages.append(_shortened(f"{where}: {error.message}" if where else error.message))
    return messages


def _shortened(message: str, limit: int = 300) -> str:
    """A schema error, whose text quotes the offending value whole, cut to ``limit``
    characters: its start (where) and its end (what is wrong with it) kept."""
    if len(message) <= limit:
        return message
    tail = limit // 3
    return f"{message[: limit - tail - 5]} ... {message[-tail:]}"


_SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"
# Flux's post-build syntax: ${name}, ${name:=default} or ${name:-default}; $${...} escapes.
_VARIABLE = re.compile(r"(\$?)\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[=-])([^}]*))?\}")


def _name_problems(obj: dict[str, Any], api_version: str, kind: str) -> Iterator[str]:
    """Why the API server would refuse the object's name or namespace (as Flux applies it:
    a name still holding a variable is filled in from outside the tree, and not judged)."""
    meta = at(obj, "metadata")
    name, namespace = meta.get("name"), meta.get("namespace")
    if isinstance(name, str) and not _unresolved(name):
        found = name_problem(api_version, kind, name)
        if found:
            yield found
    if isinstance(namespace, str) and not _unresolved(namespace):
        found = namespace_problem(namespace)
        if found:
            yield found


def _unresolved(value: Any) -> bool:
    return isinstance(value, str) and bool(_VARIABLE.search(value))


def _substitute(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, variables) for v in value]
    if not isinstance(value, str) or "${" not in value:
        return value

    def replace(match: re.Match[str]) -> str:
        escaped, name, operator, default = match.groups()
        if escaped:
            return match.group(0)[1:]
        if name in variables:
            return variables[name]
        return default if operator else match.group(0)

    text = _VARIABLE.sub(replace, value)
    if text == value or _unresolved(text):
        return text
    # Flux substitutes in the YAML text, so `replicas: ${N}` becomes a number.
    try:
        parsed = safe_load(text)
    except yaml.YAMLError:
        return text
    return parsed if isinstance(parsed, str | int | float | bool) else text


# Values that name a secret kept elsewhere, filled in before the Secret is applied: 1Password
# (`op inject`), vals (`ref+vault://...`), argocd-vault-plugin (`<path:...>`), and Flux's own
# post-build variables without a default (`${DB_PASSWORD}`, from a substituteFrom Secret).
_SECRET_REFERENCE = re.compile(
    r"^(op://\S|ref\+[a-z0-9]+://|<path:[^>]+>$|\$\{[A-Za-z_][A-Za-z0-9_]*\}$)"
)


def _only_references(document: dict[str, Any]) -> bool:
    """A Secret whose every value is a reference to a secret manager holds no secret, nor
    does one with no values at all (a service account token Kubernetes fills in)."""
    values = [
        value
        for field in ("data", "stringData")
        if isinstance(document.get(field), dict)
        for value in document[field].values()
    ]
    return all(isinstance(v, str) and _SECRET_REFERENCE.match(v.strip()) for v in values)


def _encrypted(document: dict[str, Any]) -> bool:
    """A SOPS file carries a ``sops`` block with the encrypted data key and a MAC."""
    sops = document.get("sops")
    return isinstance(sops, dict) and bool(sops.get("mac"))


def validate_tree(tree: Path, kubernetes_version: str = DEFAULT_KUBERNETES_VERSION) -> Report:
    return Validator(tree, kubernetes_version).run()
