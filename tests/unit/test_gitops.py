"""The GitOps tree, `gitops validate`, `app new` and `secrets`, through the CLI."""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubani.gitops.age import generate
from kubani.gitops.flux_schema import generated_from, served_versions, strict_schema
from tests.conftest import BIN, FIXTURES, run_cli, snapshot

ROOT = Path(__file__).resolve().parents[2]
TREE = ROOT / "gitops"
ROLE_DEFAULTS = ROOT / "ansible" / "roles" / "gitops" / "defaults" / "main.yml"


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the project's tree at <repo>/gitops, as Flux paths expect."""
    target = tmp_path / "repo" / "gitops"
    shutil.copytree(TREE, target)
    return target


def problems(tree: Path) -> list[dict[str, str]]:
    result = run_cli("gitops", "validate", "--path", tree, "--json")
    assert result.code == (1 if result.json()["problems"] else 0), result.stderr
    return list(result.json()["problems"])


def test_the_project_tree_is_valid() -> None:
    result = run_cli("gitops", "validate", "--path", TREE, "--json")
    assert result.code == 0, result.stdout
    report = result.json()
    assert report["valid"] and report["problems"] == []
    assert report["kustomizations"] >= 10 and report["objects"] >= 40


def test_a_wrong_field_type_names_file_and_object(tree: Path) -> None:
    deployment = tree / "apps/base/hello-world/deployment.yaml"
    deployment.write_text(deployment.read_text().replace("replicas: 2", 'replicas: "two"'))
    [problem] = problems(tree)
    assert problem["file"] == "gitops/apps/base/hello-world/deployment.yaml"
    assert problem["object"] == "Deployment hello-world/hello-world"
    assert "spec.replicas" in problem["message"] and "integer" in problem["message"]


def test_a_dependency_that_names_nothing_is_reported(tree: Path) -> None:
    apps = tree / "flux-system/apps.yaml"
    apps.write_text(apps.read_text().replace("- name: infra-storage", "- name: infra-storrage"))
    [problem] = problems(tree)
    assert problem["file"] == "gitops/flux-system/apps.yaml"
    assert problem["object"] == "Kustomization flux-system/apps"
    assert "infra-storrage" in problem["message"] and "dependsOn" in problem["message"]


def test_a_plain_secret_is_refused(tree: Path) -> None:
    app = tree / "apps/base/hello-world"
    (app / "token.yaml").write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: token\nstringData:\n  token: s3cret\n"
    )
    kustomization = app / "kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("  - service.yaml", "  - service.yaml\n  - token.yaml")
    )
    [problem] = problems(tree)
    assert problem["file"] == "gitops/apps/base/hello-world/token.yaml"
    assert problem["object"] == "Secret token"
    assert "not encrypted" in problem["message"]


def test_a_missing_file_in_a_kustomization_is_reported(tree: Path) -> None:
    kustomization = tree / "apps/base/two-tier/kustomization.yaml"
    kustomization.write_text(
        kustomization.read_text().replace("  - redis.yaml", "  - redis.yaml\n  - cache.yaml")
    )
    found = {p["file"]: p["message"] for p in problems(tree)}
    assert "'cache.yaml'" in found.pop("gitops/apps/base/two-tier/kustomization.yaml")
    # The overlays that include it say where the error is instead of repeating it.
    assert found and all(
        m == "cannot be built because gitops/apps/base/two-tier fails (reported there)"
        for m in found.values()
    ), found


def test_a_misspelt_flux_field_and_a_wrong_path_are_reported(tree: Path) -> None:
    infra = tree / "flux-system/infrastructure.yaml"
    text = infra.read_text().replace("  retryInterval: 1m\n", "  retryIntervall: 1m\n", 1)
    infra.write_text(text.replace("./gitops/infrastructure/storage", "./gitops/infra/storage"))
    messages = {(p["object"], p["message"]) for p in problems(tree)}
    assert any(
        o == "Kustomization flux-system/infra-sources" and "retryIntervall" in m
        for o, m in messages
    )
    assert any(
        o == "Kustomization flux-system/infra-storage" and "./gitops/infra/storage" in m
        for o, m in messages
    )


def test_app_new_creates_a_valid_app_listed_in_the_overlay(tree: Path) -> None:
    result = run_cli(
        "app", "new", "web", "--image", "nginx:1.27", "--port", "80",
        "--ingress", "web.example", "--path", tree,
    )  # fmt: skip
    assert result.code == 0, result.stderr
    folder = tree / "apps/base/web"
    assert {p.name for p in folder.iterdir()} >= {"deployment.yaml", "service.yaml", "ingress.yaml"}
    overlay = (tree / "apps/overlays/default/kustomization.yaml").read_text()
    assert "../../base/web" in yaml.safe_load(overlay)["resources"]
    assert "# - ../../base/gpu-inference" in overlay  # comments kept
    assert problems(tree) == []
    built = run_kustomize(folder)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in built}
    assert {("Deployment", "web"), ("Service", "web"), ("Ingress", "web")} <= kinds
    ingress = next(d for d in built if d["kind"] == "Ingress")
    assert ingress["spec"]["rules"][0]["host"] == "web.example"
    assert all(d["metadata"].get("namespace") == "web" for d in built if d["kind"] != "Namespace")

    before = snapshot(tree)
    again = run_cli("app", "new", "web", "--image", "nginx:1.27", "--path", tree)
    assert again.code == 1 and "already exists" in again.stderr
    assert snapshot(tree) == before


def test_app_new_with_a_gpu_asks_for_one_share(tree: Path) -> None:
    assert run_cli("app", "new", "trainer", "--image", "cuda:12", "--gpu", "--path", tree).code == 0
    [deployment] = [
        d for d in run_kustomize(tree / "apps/base/trainer") if d["kind"] == "Deployment"
    ]
    pod = deployment["spec"]["template"]["spec"]
    assert pod["runtimeClassName"] == "nvidia"
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["Web_App", "--image", "nginx"], "DNS label"),
        (["web", "--image", "nginx", "--ingress", "web.example"], "needs the port"),
        (["web", "--image", "nginx bad"], "image reference"),
        (["web", "--image", "nginx", "--port", "70000"], "out of range"),
        (["hello-world", "--image", "nginx"], "already exists"),
    ],
)
def test_app_new_refuses_bad_input_and_changes_nothing(
    tree: Path, args: list[str], reason: str
) -> None:
    before = snapshot(tree)
    result = run_cli("app", "new", *args, "--path", tree)
    assert result.code == 1 and reason in result.stderr
    assert snapshot(tree) == before


def test_a_second_app_joins_a_namespace_without_repeating_its_objects(tree: Path) -> None:
    """The Namespace and its policies come from the first app in it; listed twice, the
    apps overlay would not build and Flux would apply no app at all."""
    for name in ("shop-web", "shop-worker"):
        result = run_cli("app", "new", name, "--image", "nginx:1.27", "--namespace", "shop",
                         "--path", tree)  # fmt: skip
        assert result.code == 0, result.stderr
    assert (tree / "apps/base/shop-web/namespace.yaml").is_file()
    assert not (tree / "apps/base/shop-worker/namespace.yaml").exists()
    assert problems(tree) == []
    built: list[Any] = run_kustomize(tree / "apps/overlays/default")
    in_shop = sorted(
        (d["kind"], d["metadata"]["name"])
        for d in built
        if d["kind"] in ("Namespace", "NetworkPolicy", "Deployment")
        and "shop" in (d["metadata"].get("namespace"), d["metadata"]["name"])
    )
    assert in_shop == [
        ("Deployment", "shop-web"),
        ("Deployment", "shop-worker"),
        ("Namespace", "shop"),
        ("NetworkPolicy", "allow-from-ingress-controller"),
        ("NetworkPolicy", "allow-same-namespace"),
        ("NetworkPolicy", "default-deny-ingress"),
    ]


@pytest.mark.parametrize("namespace", ["kube-system", "flux-system", "default"])
def test_an_app_is_never_put_in_the_cluster_s_own_namespaces(tree: Path, namespace: str) -> None:
    before = snapshot(tree)
    result = run_cli("app", "new", "web", "--image", "nginx", "--namespace", namespace,
                     "--path", tree)  # fmt: skip
    assert result.code == 1
    assert f"{namespace} is one of the cluster's own namespaces" in result.stderr
    assert snapshot(tree) == before


def test_an_app_that_clashes_with_another_is_refused_and_nothing_is_left(tree: Path) -> None:
    template = tree / "templates/app/deployment.yaml"
    template.write_text(template.read_text().replace("name: ${name}", "name: same", 1))
    first = run_cli("app", "new", "one", "--image", "nginx", "--namespace", "team", "--path", tree)
    assert first.code == 0, first.stderr
    before = snapshot(tree)
    second = run_cli("app", "new", "two", "--image", "nginx", "--namespace", "team", "--path", tree)
    assert second.code == 1
    assert "the overlay would no longer build" in second.stderr
    assert "already registered id: Deployment.v1.apps/same.team" in second.stderr
    assert snapshot(tree) == before


def run_kustomize(folder: Path) -> list[dict[str, object]]:
    import subprocess

    out = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=True
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


# ---- secrets ----------------------------------------------------------------------


def test_a_generated_key_pair_opens_what_is_sealed_for_it() -> None:
    from pyrage import decrypt, encrypt, x25519

    key = generate()
    sealed = encrypt(b"s3cret", [x25519.Recipient.from_str(key.recipient)])
    assert decrypt(sealed, [x25519.Identity.from_str(key.identity)]) == b"s3cret"
    assert key.key_file().splitlines()[-1] == key.identity


def test_the_example_secret_decrypts_with_the_example_key() -> None:
    result = run_cli(
        "secrets", "decrypt", TREE / "apps/base/nginx/secret.yaml",
        "--key-file", FIXTURES / "example.agekey",
    )  # fmt: skip
    assert result.code == 0, result.stderr
    assert yaml.safe_load(result.stdout)["stringData"]["auth"].startswith("admin:")


def test_keygen_encrypt_decrypt_round_trip(tmp_path: Path) -> None:
    key_file = tmp_path / "keys" / "age.agekey"
    made = run_cli("secrets", "keygen", "--output", key_file, "--json")
    assert made.code == 0, made.stderr
    assert key_file.stat().st_mode & 0o777 == 0o600
    recipient = made.json()["recipient"]
    assert re.fullmatch(r"age1[02-9ac-hj-np-z]{58}", recipient)
    assert "AGE-SECRET-KEY" not in made.stdout + made.stderr
    (tmp_path / ".sops.yaml").write_text(
        f"creation_rules:\n  - encrypted_regex: ^(data|stringData)$\n    age: {recipient}\n"
    )
    secret = tmp_path / "secret.yaml"
    secret.write_text(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\nstringData:\n  pw: hunter2\n"
    )
    assert run_cli("secrets", "encrypt", secret).code == 0
    assert "hunter2" not in secret.read_text()
    assert run_cli("secrets", "encrypt", secret).code == 1  # not twice
    plain = run_cli("secrets", "decrypt", secret, "--key-file", key_file)
    assert plain.code == 0 and yaml.safe_load(plain.stdout)["stringData"]["pw"] == "hunter2"
    assert run_cli("secrets", "keygen", "--output", key_file).code == 1  # never overwrites


def test_without_sops_the_message_says_how_to_get_it(tmp_path: Path) -> None:
    secret = tmp_path / "secret.yaml"
    secret.write_text("apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n")
    bare = tmp_path / "bin"
    bare.mkdir()
    result = run_cli("secrets", "encrypt", secret, env={"PATH": str(bare)})
    assert result.code == 1
    assert "sops is not installed" in result.stderr and "install sops" in result.stderr
    assert shutil.which("sops", path=str(BIN)) is not None  # the dev environment has it


# ---- the role and the tree agree ----------------------------------------------------


def test_the_gitops_role_points_at_this_tree() -> None:
    defaults = yaml.safe_load(ROLE_DEFAULTS.read_text())
    path = defaults["gitops_path"]
    assert "git_path" in path  # the inventory's git_path, whose default is below
    from kubani.models.cluster import ClusterConfig

    default_path = ClusterConfig.model_fields["git_path"].default
    assert (ROOT / default_path / "kustomization.yaml").is_file()
    flux_objects = [
        d for f in (TREE / "flux-system").glob("*.yaml") for d in yaml.safe_load_all(f.read_text())
        if d and d.get("kind") == "Kustomization" and "toolkit" in d["apiVersion"]
    ]  # fmt: skip
    assert {d["spec"]["sourceRef"]["name"] for d in flux_objects} == {defaults["gitops_name"]}
    decryption = {
        d["spec"].get("decryption", {}).get("secretRef", {}).get("name") for d in flux_objects
    }
    assert defaults["gitops_sops_secret_name"] in decryption
    substitutions = {
        s["name"]
        for d in flux_objects
        for s in d["spec"].get("postBuild", {}).get("substituteFrom", [])
    }
    assert substitutions == {defaults["gitops_cluster_vars_name"]}


def test_the_flux_schemas_are_flux_own() -> None:
    sources = generated_from()
    assert set(sources) == {
        "github.com/fluxcd/source-controller",
        "github.com/fluxcd/kustomize-controller",
        "github.com/fluxcd/helm-controller/api",
        "github.com/fluxcd/notification-controller/api",
    }
    # The lab runs the same source and kustomize controllers the schemas come from.
    lab_go_mod = (ROOT / "lab/components/flux/go.mod").read_text()
    for module in ("github.com/fluxcd/source-controller", "github.com/fluxcd/kustomize-controller"):
        assert f"{module} {sources[module]}" in lab_go_mod
    kustomization = strict_schema("kustomize.toolkit.fluxcd.io/v1", "Kustomization")
    assert kustomization is not None
    assert "prune" in kustomization["properties"]["spec"]["required"]
    assert kustomization["properties"]["spec"]["additionalProperties"] is False
    assert served_versions("source.toolkit.fluxcd.io", "OCIRepository") == ["v1"]


HELM_RELEASE = """\
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: podinfo
  namespace: default
spec:
  interval: 10m
  url: oci://ghcr.io/stefanprodan/charts/podinfo
  ref:
    semver: ">=6.0.0"
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: podinfo
  namespace: default
spec:
  interval: 50m
  chartRef:
    kind: OCIRepository
    name: podinfo
  install:
    strategy:
      name: RetryOnFailure
      retryInterval: 2m
  upgrade:
    strategy:
      name: RemediateOnFailure
    remediation:
      retries: 3
  test:
    enable: true
  driftDetection:
    mode: enabled
  values:
    replicaCount: 2
"""


def test_current_flux_fields_are_accepted_and_misspelt_ones_caught(standard_layout: Path) -> None:
    release = standard_layout / "infrastructure/prod/podinfo.yaml"
    release.write_text(HELM_RELEASE)
    (standard_layout / "infrastructure/prod/kustomization.yaml").write_text(
        "resources:\n  - config.yaml\n  - podinfo.yaml\n"
    )
    assert problems(standard_layout) == []
    release.write_text(HELM_RELEASE.replace("  driftDetection:", "  driftDetektion:"))
    [found] = problems(standard_layout)
    assert found["object"] == "HelmRelease default/podinfo" and "driftDetektion" in found["message"]
    release.write_text(
        HELM_RELEASE.replace("helm.toolkit.fluxcd.io/v2", "helm.toolkit.fluxcd.io/v2beta2")
    )
    [found] = problems(standard_layout)
    assert "v2beta2 HelmRelease is not served by Flux" in found["message"]
    assert "use helm.toolkit.fluxcd.io/v2" in found["message"]


def test_post_build_variables_are_substituted_before_checking(standard_layout: Path) -> None:
    infra = standard_layout / "clusters/prod/infrastructure.yaml"
    infra.write_text(
        infra.read_text()
        + '  postBuild:\n    substitute:\n      REPLICAS: "3"\n'
        + "    substituteFrom:\n      - kind: ConfigMap\n        name: cluster-vars\n"
    )
    _write(
        standard_layout,
        {
            "clusters/prod/vars.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
            '  name: cluster-vars\n  namespace: flux-system\ndata:\n  PORT: "8080"\n',
            "infrastructure/prod/kustomization.yaml": "resources:\n  - config.yaml\n"
            "  - deploy.yaml\n",
            # An anchor defined twice: kustomize (go-yaml) takes the second, and so do we.
            "infrastructure/prod/deploy.yaml": (
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n"
                "  namespace: default\n  labels: &labels {app: web}\n"
                "spec:\n  replicas: ${REPLICAS}\n  selector:\n    matchLabels: &labels {app: web}\n"
                "  template:\n    metadata:\n      labels: *labels\n    spec:\n"
                "      containers:\n        - name: web\n          image: nginx:${TAG:=1.27}\n"
                "          ports:\n            - containerPort: ${PORT}\n"
                "          resources:\n            limits:\n              cpu: ${CPU_LIMIT}\n"
            ),
        },
    )
    # REPLICAS and PORT become numbers; CPU_LIMIT is set nowhere Kubani can see (a cluster
    # ConfigMap, say): it is not judged.
    assert problems(standard_layout) == []
    infra.write_text(infra.read_text().replace('REPLICAS: "3"', "REPLICAS: three"))
    [found] = problems(standard_layout)
    assert found["object"] == "Deployment default/web" and "spec.replicas" in found["message"]


def test_age_keys_are_distinct() -> None:
    first, second = generate(), generate()
    assert first.identity != second.identity and first.recipient != second.recipient
    assert first.identity.startswith("AGE-SECRET-KEY-1")


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _flux_kustomization(name: str, path: str, depends_on: str | None = None) -> str:
    depends = f"  dependsOn:\n    - name: {depends_on}\n" if depends_on else ""
    return (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        f"metadata:\n  name: {name}\n  namespace: flux-system\n"
        f"spec:\n  interval: 10m\n  path: {path}\n  prune: true\n{depends}"
        "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n"
    )


CONFIGMAP = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: default\n"


@pytest.fixture
def standard_layout(tmp_path: Path) -> Path:
    """Flux's documented repository layout: clusters/<env>/ holds plain Flux objects (no
    kustomization.yaml), apps/ and infrastructure/ hold kustomize overlays."""
    repo = tmp_path / "fleet"
    (repo / ".git").mkdir(parents=True)
    _write(
        repo,
        {
            "clusters/prod/infrastructure.yaml": _flux_kustomization(
                "infra", "./infrastructure/prod"
            ),
            "clusters/prod/apps.yaml": _flux_kustomization("apps", "./apps/prod", "infra"),
            "clusters/prod/notes.yaml": "owner: me\n",  # not a manifest: Flux leaves it out
            "infrastructure/prod/kustomization.yaml": "resources:\n  - config.yaml\n",
            "infrastructure/prod/config.yaml": CONFIGMAP.format(name="infra"),
            "apps/base/kustomization.yaml": "resources:\n  - app.yaml\n",
            "apps/base/app.yaml": CONFIGMAP.format(name="app"),
            "apps/prod/kustomization.yaml": "resources:\n  - ../base\n",
        },
    )
    return repo


def test_folders_without_a_kustomization_are_read_as_flux_reads_them(
    standard_layout: Path,
) -> None:
    result = run_cli("gitops", "validate", "--path", standard_layout, "--json")
    assert result.code == 0, result.stdout
    report = result.json()
    assert report["plain_folders"] == 1 and report["objects"] == 4
    apps = standard_layout / "clusters/prod/apps.yaml"
    apps.write_text(
        _flux_kustomization("apps", "./apps/production", "infrastructure")
        + "---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\n"
        "metadata:\n  name: web\n  namespace: default\nspec:\n  interval: 5m\n"
        "  chartRef:\n    kind: OCIRepository\n    name: web-chart\n"
    )
    messages = {(p["file"], p["message"]) for p in problems(standard_layout)}
    assert any("dependsOn names Kustomization flux-system/infrastructure" in m for _, m in messages)
    assert any("path ./apps/production is not a folder" in m for _, m in messages)
    assert any("chartRef names OCIRepository default/web-chart" in m for _, m in messages)
    assert {f for f, _ in messages} == {"clusters/prod/apps.yaml"}


def test_a_path_in_another_repository_is_not_looked_for_here(standard_layout: Path) -> None:
    other = (
        _flux_kustomization("vendor", "./deploy/vendor")
        .replace("name: flux-system\n", "name: vendor-repo\n")
        .replace("sourceRef:\n", "sourceRef:\n    namespace: flux-system\n")
    )
    source = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n"
        "  name: vendor-repo\n  namespace: flux-system\nspec:\n  interval: 1h\n"
        "  url: https://example.com/vendor.git\n  ref:\n    branch: main\n"
    )
    _write(standard_layout, {"clusters/prod/vendor.yaml": other + "---\n" + source})
    assert problems(standard_layout) == []


def test_a_tree_with_nothing_to_check_is_not_valid(tmp_path: Path) -> None:
    (tmp_path / "empty" / "docs").mkdir(parents=True)
    (tmp_path / "empty" / "docs" / "values.yaml").write_text("replicas: 2\n")
    result = run_cli("gitops", "validate", "--path", tmp_path / "empty")
    assert result.code == 1
    assert "nothing to check" in result.stderr and "valid" not in result.stderr.split(":")[-1]


def test_a_broken_dependency_is_reported_once_where_it_is(standard_layout: Path) -> None:
    base = standard_layout / "apps/base/kustomization.yaml"
    base.write_text(
        "resources:\n  - app.yaml\npatches:\n  - target:\n      kind: ConfigMap\n"
        "    patch: |-\n      - op: replace\n        path: /data/missing\n        value: x\n"
    )
    found = problems(standard_layout)
    by_file = {p["file"]: p["message"] for p in found}
    assert set(by_file) == {"apps/base/kustomization.yaml", "apps/prod/kustomization.yaml"}
    assert by_file["apps/prod/kustomization.yaml"] == (
        "cannot be built because apps/base fails (reported there)"
    )
    # kustomize's own words, whole.
    assert "kustomize build failed" in by_file["apps/base/kustomization.yaml"]
    assert "/data/missing" in by_file["apps/base/kustomization.yaml"]


def test_objects_of_any_shape_are_reported_not_crashed_on(standard_layout: Path) -> None:
    # What a repository nobody here wrote may hold where objects have mappings and strings.
    odd = [
        "apiVersion: 1\nkind: ConfigMap\nmetadata: {name: numbered}\n",
        "apiVersion: v1\nkind: [ConfigMap]\nmetadata: {name: listed}\n",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: just-a-name\ndata: [a, b]\n",
        _flux_kustomization("shapeless", "./apps/prod")
        .replace("  interval: 10m\n", "")
        .replace("spec:\n", "spec:\n  dependsOn: 5\n  postBuild: {substituteFrom: 7}\n"),
        _flux_kustomization("nul", '"./apps\\0prod"'),
        "apiVersion: v1\nkind: Secret\nmetadata: [a]\nstringData: {a: b}\n",
    ]
    _write(standard_layout, {"clusters/prod/odd.yaml": "---\n".join(odd)})
    result = run_cli("gitops", "validate", "--path", standard_layout, "--json")
    assert result.code == 1, result.stderr
    assert "internal error" not in result.stderr
    messages = [p["message"] for p in result.json()["problems"]]
    assert any("apiVersion missing or not text" in m for m in messages)
    assert any("kind missing or not text" in m for m in messages)
    assert any("metadata" in m for m in messages)
    assert any("path ./apps\0prod is not a folder" in m for m in messages)


ARTIFACT_GENERATOR = """apiVersion: source.extensions.fluxcd.io/v1beta1
kind: ArtifactGenerator
metadata:
  name: flux-system
  namespace: flux-system
spec:
  sources:
    - alias: monorepo
      kind: GitRepository
      name: flux-system
  artifacts:
    - name: infrastructure
      originRevision: "@monorepo"
      copy:
        - from: "@monorepo/infrastructure/**"
          to: "@artifact/"
    - name: apps
      copy:
        - from: "@monorepo/apps/base/**"
          to: "@artifact/base/"
        - from: "@monorepo/apps/prod/**"
          to: "@artifact/prod/"
"""


def _from_artifact(text: str, artifact: str) -> str:
    return text.replace(
        "  sourceRef:\n    kind: GitRepository\n    name: flux-system\n",
        f"  sourceRef:\n    kind: ExternalArtifact\n    name: {artifact}\n",
    )


def test_kustomizations_from_generated_artifacts_are_followed(standard_layout: Path) -> None:
    # flux2-kustomize-helm-example's layout since Flux 2.7: an ArtifactGenerator copies
    # folders of the repository into artifacts, which Kustomizations read.
    _write(
        standard_layout,
        {
            "clusters/prod/artifacts.yaml": ARTIFACT_GENERATOR,
            "clusters/prod/infrastructure.yaml": _from_artifact(
                _flux_kustomization("infra", "./prod"), "infrastructure"
            ),
            "clusters/prod/apps.yaml": _from_artifact(
                _flux_kustomization("apps", "./prod", "infra"), "apps"
            ),
        },
    )
    assert problems(standard_layout) == []

    apps = standard_layout / "clusters/prod/apps.yaml"
    apps.write_text(apps.read_text().replace("path: ./prod", "path: ./staging"))
    infra = standard_layout / "clusters/prod/infrastructure.yaml"
    infra.write_text(infra.read_text().replace("name: infrastructure", "name: infra-artifact"))
    result = run_cli("gitops", "validate", "--path", standard_layout, "--json")
    messages = sorted(p["message"] for p in result.json()["problems"])
    assert result.code == 1
    assert messages == [
        "sourceRef names ExternalArtifact flux-system/infra-artifact, which is not in the tree",
    ], messages  # ./staging is in no copy of the artifact: nothing is claimed about it

    apps.write_text(apps.read_text().replace("path: ./staging", "path: ./prod/missing"))
    result = run_cli("gitops", "validate", "--path", standard_layout, "--json")
    assert any(
        "path ./prod/missing of artifact apps is copied from apps/prod/missing, which is not a "
        "folder of the repository" in p["message"]
        for p in result.json()["problems"]
    ), result.stdout


def test_what_public_trees_hold_is_read_as_flux_reads_it(standard_layout: Path) -> None:
    # From onedr0p/home-ops: `matchType: =` (YAML 1.1's "value" type to PyYAML, text to
    # kubectl), an application's config with its own tags packed by a configMapGenerator,
    # and an Alert on a FluxInstance (the Flux Operator patches the Alert CRD for it).
    _write(
        standard_layout,
        {
            "apps/base/kustomization.yaml": (
                "resources:\n  - app.yaml\n  - matcher.yaml\n"
                "configMapGenerator:\n  - name: recyclarr\n    files:\n      - recyclarr.yml\n"
            ),
            "apps/base/matcher.yaml": CONFIGMAP.format(name="matcher") + "data:\n  matchType: =\n",
            "apps/base/recyclarr.yml": "sonarr:\n  main:\n    api_key: !env_var SONARR_API_KEY\n",
            "clusters/prod/alerts.yaml": (
                "apiVersion: notification.toolkit.fluxcd.io/v1beta3\nkind: Alert\n"
                "metadata:\n  name: operator\n  namespace: flux-system\n"
                "spec:\n  providerRef:\n    name: slack\n  eventSources:\n"
                "    - kind: FluxInstance\n      name: flux\n"
            ),
        },
    )
    assert problems(standard_layout) == []
    alerts = standard_layout / "clusters/prod/alerts.yaml"
    alerts.write_text(alerts.read_text().replace("kind: FluxInstance", "kind: FluxInstanse"))
    [problem] = problems(standard_layout)
    assert "'FluxInstanse' is not one of" in problem["message"]


def test_data_files_and_secret_references_are_not_taken_for_manifests(
    standard_layout: Path,
) -> None:
    # From bjw-s-labs/home-ops: an application's config (a YAML list) beside the manifests,
    # and a Secret of 1Password references that `op inject` fills in before it is applied.
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: connect\n  namespace: default\n"
        "stringData:\n  token: op://Automation/connect/token\n"
        "  more: ref+vault://secret/connect#/token\n"
    )
    _write(
        standard_layout,
        {
            "apps/base/kustomization.yaml": (
                "resources:\n  - app.yaml\n  - secret.yaml\n"
                "configMapGenerator:\n  - name: hooks\n    files:\n      - hooks.yaml\n"
            ),
            "apps/base/hooks.yaml": "- id: radarr\n  execute-command: /config/radarr.sh\n",
            "apps/base/secret.yaml": secret,
        },
    )
    assert problems(standard_layout) == []

    _write(
        standard_layout,
        {
            "apps/base/secret.yaml": secret + "  password: hunter2\n",
            "apps/base/app.yaml": CONFIGMAP.format(name="app") + "---\n- stray\n",
        },
    )
    result = run_cli("gitops", "validate", "--path", standard_layout, "--json")
    messages = sorted(p["message"] for p in result.json()["problems"])
    assert any("a YAML document that is not a mapping" in m for m in messages), messages
    assert any("Secret is not encrypted" in m for m in messages), messages


def test_a_tree_as_flux_builds_it_with_its_parents_patches(standard_layout: Path) -> None:
    # From xunholy/k8s-gitops: a parent Kustomization (sourced from an OCI artifact of the
    # repository's kubernetes/ folder) patches defaults into every child Kustomization and,
    # through them, every HelmRelease; an overlay lists files outside its folder (Flux builds
    # without load restrictions); objects without a namespace get theirs from the applier.
    parent = _flux_kustomization("cluster", "./apps/overlays/cluster-00").replace(
        "  sourceRef:\n    kind: GitRepository\n",
        "  sourceRef:\n    kind: OCIRepository\n",
    ) + (
        "  patches:\n    - patch: |-\n        apiVersion: kustomize.toolkit.fluxcd.io/v1\n"
        "        kind: Kustomization\n        metadata:\n          name: _\n"
        "        spec:\n          interval: 30m\n          prune: true\n"
        "      target:\n        group: kustomize.toolkit.fluxcd.io\n        kind: Kustomization\n"
    )
    child = (
        "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
        "metadata:\n  name: web\n  namespace: flux-system\n"
        "spec:\n  path: ./apps/base/web/app\n  targetNamespace: web\n"
        "  sourceRef:\n    kind: OCIRepository\n    name: flux-system\n"
    )
    release = (
        "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: web\n"
        "spec:\n  interval: 1h\n  chartRef:\n    kind: OCIRepository\n    name: web\n"
    )
    chart = (
        "apiVersion: source.toolkit.fluxcd.io/v1\nkind: OCIRepository\n"
        "metadata:\n  name: web\n  namespace: web\n"
        "spec:\n  interval: 1h\n  url: oci://ghcr.io/example/web\n  ref:\n    tag: 1.0.0\n"
    )
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: web\n"
        "stringData:\n  PASSWORD: ${WEB_PASSWORD}\n"
    )
    _write(
        standard_layout,
        {
            "kubernetes/clusters/cluster-00/ks.yaml": parent,
            "kubernetes/apps/overlays/cluster-00/kustomization.yaml": (
                "resources:\n  - ../../base/web/ks.yaml\n"
            ),
            "kubernetes/apps/base/web/ks.yaml": child,
            "kubernetes/apps/base/web/app/kustomization.yaml": (
                "resources:\n  - release.yaml\n  - chart.yaml\n  - secret.yaml\n"
            ),
            "kubernetes/apps/base/web/app/release.yaml": release,
            "kubernetes/apps/base/web/app/chart.yaml": chart,
            "kubernetes/apps/base/web/app/secret.yaml": secret,
        },
    )
    assert problems(standard_layout) == []

    parent_file = standard_layout / "kubernetes/clusters/cluster-00/ks.yaml"
    parent_file.write_text(parent.split("  patches:\n")[0])
    result = run_cli("gitops", "validate", "--path", standard_layout, "--json")
    messages = sorted(p["message"] for p in result.json()["problems"])
    assert messages == [
        "spec: 'interval' is a required property",
        "spec: 'prune' is a required property",
    ], messages


def test_helm_charts_in_a_kustomization_are_named_for_what_flux_does_not_do(
    standard_layout: Path,
) -> None:
    # Built by another tool (a bootstrap script with --enable-helm): not Flux's concern.
    _write(
        standard_layout,
        {
            "bootstrap/cilium/kustomization.yaml": (
                "helmCharts:\n  - name: cilium\n    repo: https://helm.cilium.io/\n"
                "    version: 1.16.0\n    releaseName: cilium\n"
            ),
            # A service account token: Kubernetes fills it in, nothing to encrypt.
            "apps/base/token.yaml": (
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: auth\n  annotations:\n"
                "    kubernetes.io/service-account.name: auth\n"
                "type: kubernetes.io/service-account-token\n"
            ),
        },
    )
    base = standard_layout / "apps/base/kustomization.yaml"
    base.write_text(base.read_text() + "  - token.yaml\n")
    assert problems(standard_layout) == []
    # Applied by a Flux Kustomization: Flux would fail on it.
    _write(
        standard_layout,
        {"clusters/prod/bootstrap.yaml": _flux_kustomization("cilium", "./bootstrap/cilium")},
    )
    [problem] = problems(standard_layout)
    assert (
        "it inflates Helm charts (helmCharts), which Flux's kustomize does not do"
        in (problem["message"])
    )


def test_patches_select_and_merge_as_kustomize_does() -> None:
    from kubani.gitops.patches import merged, selects

    release = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps"},
        "spec": {"interval": "1h", "install": {"remediation": {"retries": 1}}, "suspend": True},
    }
    patch = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "_", "labels": {"tier": "web"}},
        "spec": {
            "install": {"remediation": {"retries": 3}, "crds": "CreateReplace"},
            "suspend": None,
        },
    }
    assert selects({"kind": "HelmRelease", "name": "w.*"}, patch, release)
    assert not selects({"kind": "HelmRelease", "namespace": "other"}, patch, release)
    assert not selects({}, patch, release)  # no target: the patch's own name, "_", is not web
    assert merged(release, patch) == {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": {"name": "web", "namespace": "apps", "labels": {"tier": "web"}},
        "spec": {
            "interval": "1h",
            "install": {"remediation": {"retries": 3}, "crds": "CreateReplace"},
        },
    }


def test_files_flux_never_reads_as_yaml_are_not_judged_as_yaml(standard_layout: Path) -> None:
    # From khuedoan/homelab and ricsanfre/pi-cluster: mkdocs.yml with a Python tag, a
    # Go-templated boilerplate app, Helm values with ${VAR} in a flow list.
    _write(
        standard_layout,
        {
            "mkdocs.yml": "markdown_extensions:\n  - emoji:\n"
            "      emoji_index: !!python/name:material.extensions.emoji.twemoji\n",
            "boilerplate/app/kustomization.yaml": "namespace: {{ .app_namespace }}\n"
            "resources:\n  - helm.yaml\n",
            "boilerplate/app/helm.yaml": "apiVersion: v1\nkind: ConfigMap\n"
            "metadata:\n  name: {{ .app_name }}\n",
            "apps/base/values.yaml": "scrape:\n  - targets: [vault.${CLUSTER_DOMAIN}:8200]\n",
        },
    )
    assert problems(standard_layout) == []
    _write(standard_layout, {"apps/base/broken.yaml": "apiVersion: v1\nkind: [ConfigMap\n"})
    [problem] = problems(standard_layout)
    assert problem["file"].endswith("apps/base/broken.yaml")
    assert problem["message"].startswith("not valid YAML")


def test_a_remote_resource_that_cannot_be_fetched_is_named(standard_layout: Path) -> None:
    # A closed port on loopback: nothing leaves the machine (the lab tests watch for that).
    _write(
        standard_layout,
        {"apps/remote/kustomization.yaml": "resources:\n  - https://127.0.0.1:1/crds.yaml\n"},
    )
    result = run_cli("gitops", "validate", "--path", standard_layout, "--json", timeout=120)
    [problem] = result.json()["problems"]
    assert (
        "it lists a remote resource, https://127.0.0.1:1/crds.yaml, which could not be "
        in (problem["message"])
    )


def test_a_tree_without_git_is_read_from_itself_or_its_parent(standard_layout: Path) -> None:
    # A repository downloaded as an archive, validated from its root: no .git says where
    # the root is, so paths are looked for from the tree and from its parent.
    (standard_layout / ".git").rmdir()
    assert problems(standard_layout) == []
    apps = standard_layout / "clusters/prod/apps.yaml"
    apps.write_text(apps.read_text().replace("./apps/prod", "./apps/missing"))
    [problem] = problems(standard_layout)
    assert "path ./apps/missing is not a folder of the repository" in problem["message"]


def test_components_of_a_flux_kustomization_are_built_in_as_flux_does(
    standard_layout: Path,
) -> None:
    # From tyriis/home-ops: the folder patches a resource that only the component the Flux
    # Kustomization adds (spec.components) brings; alone, kustomize fails on it.
    _write(
        standard_layout,
        {
            "components/policy/kustomization.yaml": (
                "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
                "resources:\n  - policy.yaml\n"
            ),
            "components/policy/policy.yaml": CONFIGMAP.format(name="policy"),
            "apps/web/kustomization.yaml": (
                "resources:\n  - app.yaml\npatches:\n  - path: policy-patch.yaml\n"
            ),
            "apps/web/app.yaml": CONFIGMAP.format(name="web"),
            "apps/web/policy-patch.yaml": CONFIGMAP.format(name="policy")
            + "data:\n  tuned: 'yes'\n",
            "clusters/prod/web.yaml": _flux_kustomization("web", "./apps/web")
            + "  components:\n    - ../../components/policy\n",
        },
    )
    before = snapshot(standard_layout)
    assert problems(standard_layout) == []
    assert snapshot(standard_layout) == before  # built in a scratch copy
    web = standard_layout / "clusters/prod/web.yaml"
    web.write_text(web.read_text().split("  components:")[0])
    [problem] = problems(standard_layout)
    assert "no resource matches strategic merge patch" in problem["message"]


def test_names_the_api_server_refuses_are_reported_and_the_ones_it_takes_are_not(
    standard_layout: Path,
) -> None:
    """A schema takes any string as a name; the API server does not, by kind."""
    refused = {
        "ConfigMap default/My-App": CONFIGMAP.format(name="My-App"),
        "ConfigMap default/web_1": CONFIGMAP.format(name="web_1"),
        "Service 1st": "apiVersion: v1\nkind: Service\nmetadata: {name: 1st}\nspec: {ports: "
        "[{port: 80}]}\n",
        "Namespace team.a": "apiVersion: v1\nkind: Namespace\nmetadata: {name: team.a}\n",
        "ClusterRole a/b": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: a/b}\nrules: []\n",
        "Kustomization flux-system/Apps": _flux_kustomization("Apps", "./apps/prod"),
        "ConfigMap Prod/ok": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok, namespace: "
        "Prod}\n",
        "ConfigMap default/'x\\u202ey'": CONFIGMAP.format(name='"x\\u202ey"'),
    }
    taken = [
        CONFIGMAP.format(name="app.config-1"),  # a subdomain has dots
        "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\n"
        "metadata: {name: 'system:kubani:reader'}\nrules: []\n",
        "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n",
        CONFIGMAP.format(name="${app_name}"),  # filled in by Flux from outside the tree
    ]
    _write(standard_layout, {"clusters/prod/named.yaml": "---\n".join([*refused.values(), *taken])})
    found = {
        p["object"]: p["message"]
        for p in problems(standard_layout)
        if "the API server refuses it" in p["message"]
    }
    assert set(found) == set(refused)
    assert "metadata.name 'My-App' is not a DNS subdomain" in found["ConfigMap default/My-App"]
    assert "RFC 1035 label" in found["Service 1st"]
    assert "RFC 1123 label" in found["Namespace team.a"]
    assert "without '/'" in found["ClusterRole a/b"]
    assert "metadata.namespace 'Prod'" in found["ConfigMap Prod/ok"]
