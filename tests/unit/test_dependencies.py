"""Every package the product imports is one it declares, with bounds on both sides."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import kubani

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = Path(kubani.__file__).parent
# Imported only by `cluster-mgr lab`, which says how to install it when it is missing.
OPTIONAL = {"kubani_lab"}


def _declared() -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = {}
    for requirement in project["dependencies"]:
        name = re.split(r"[<>=!~ ;\[]", requirement, maxsplit=1)[0]
        specs[re.sub(r"[-_.]+", "-", name).lower()] = requirement
    return specs


def _imported() -> set[str]:
    found = set()
    for source in PRODUCT.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "kubani"} - OPTIONAL


def test_every_imported_package_is_declared_with_an_upper_bound() -> None:
    declared, owners = _declared(), packages_distributions()
    missing, unbounded = [], []
    for module in sorted(_imported()):
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in owners.get(module, [module])}
        named = dists & declared.keys()
        if not named:
            missing.append(f"{module} ({', '.join(sorted(dists))})")
        unbounded += [declared[d] for d in named if "<" not in declared[d]]
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"
    assert not unbounded, f"declared without an upper bound: {unbounded}"
