"""Write src/kubani/gitops/flux_crds.json: the OpenAPI schema of every served version of every
Flux kind, taken from Flux's own CRDs at pinned versions, for `gitops validate`.

- source-controller and kustomize-controller: the CRD manifests in their modules
  (`config/crd/bases`), at the versions `lab/components/flux/go.mod` pins (go.sum-checked).
- helm-controller and notification-controller: their `api` modules are what the Go proxy
  serves, so the CRDs are generated from the API types with controller-gen, as their
  repositories generate them (`tools/fluxcrds/go.mod` pins both and controller-gen).

Run by hand after moving a pin: `python scripts/flux_schemas.py` (needs Go and the proxy).
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
LAB_FLUX = ROOT / "lab" / "components" / "flux"
TOOLS = ROOT / "tools" / "fluxcrds"
OUTPUT = ROOT / "src" / "kubani" / "gitops" / "flux_crds.json"
GENERATED = (
    "github.com/fluxcd/helm-controller/api",
    "github.com/fluxcd/notification-controller/api",
)
SHIPPED = ("github.com/fluxcd/source-controller", "github.com/fluxcd/kustomize-controller")


def go(*args: str, cwd: Path) -> str:
    env = {**os.environ, "GOTOOLCHAIN": "local", "GOFLAGS": "-mod=readonly"}
    done = subprocess.run(
        ["go", *args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"go {' '.join(args)} failed in {cwd}:\n{done.stderr}")
    return done.stdout


def modules(cwd: Path, paths: tuple[str, ...]) -> list[dict[str, Any]]:
    decoder = json.JSONDecoder()
    text, found = go("mod", "download", "-json", *paths, cwd=cwd), []
    index = 0
    while index < len(text.strip()):
        item, index = decoder.raw_decode(text, index)
        found.append(item)
        while index < len(text) and text[index].isspace():
            index += 1
    return found


def crd_files() -> tuple[list[Path], dict[str, str]]:
    versions: dict[str, str] = {}
    files: list[Path] = []
    for module in modules(LAB_FLUX, SHIPPED):
        versions[module["Path"]] = module["Version"]
        files += sorted((Path(module["Dir"]) / "config" / "crd" / "bases").glob("*.yaml"))
    for module in modules(TOOLS, GENERATED):
        versions[module["Path"]] = module["Version"]
    out = Path(tempfile.mkdtemp(prefix="flux-crds-"))
    go(
        "tool",
        "controller-gen",
        "crd:crdVersions=v1",
        *(f"paths={path}/..." for path in GENERATED),
        f"output:crd:artifacts:config={out}",
        cwd=TOOLS,
    )
    files += sorted(out.glob("*.yaml"))
    return files, versions


def without_descriptions(schema: Any) -> Any:
    """The schema without its prose (most of its size); what validates stays."""
    if isinstance(schema, dict):
        return {
            key: (
                without_descriptions(value)
                if key != "properties"
                else {name: without_descriptions(item) for name, item in value.items()}
            )
            for key, value in schema.items()
            if key != "description"
        }
    if isinstance(schema, list):
        return [without_descriptions(item) for item in schema]
    return schema


def main() -> None:
    files, versions = crd_files()
    schemas: dict[str, Any] = {}
    for path in files:
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schemas[f"{group}/{version['name']}/{kind}"] = {
                    "deprecated": bool(version.get("deprecated")),
                    "schema": without_descriptions(version["schema"]["openAPIV3Schema"]),
                }
    lines = ["{", f'"generated_from": {json.dumps(versions, sort_keys=True)},', '"kinds": {']
    entries = [
        f"{json.dumps(key)}: {json.dumps(schemas[key], sort_keys=True, separators=(',', ':'))}"
        for key in sorted(schemas)
    ]
    lines.append(",\n".join(entries))
    lines += ["}", "}"]
    OUTPUT.write_text("\n".join(lines) + "\n")
    print(f"{OUTPUT.relative_to(ROOT)}: {len(schemas)} kinds/versions from {versions}")


if __name__ == "__main__":
    main()
