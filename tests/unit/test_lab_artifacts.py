"""Stand-in artifacts are built like release downloads: one binary per release, with sums."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from kubani_lab.artifacts import build_k3s_artifacts


def test_each_release_is_its_own_binary(tmp_path: Path) -> None:
    versions = ("v1.31.4+k3s1", "v1.32.1+k3s1")
    sums = {}
    for version in versions:
        folder = build_k3s_artifacts(tmp_path / version, version)
        binary = folder / "k3s"
        listed = (folder / "sha256sum-amd64.txt").read_text().split()
        assert listed == [hashlib.sha256(binary.read_bytes()).hexdigest(), "k3s"]
        sums[version] = listed[0]
        reported = subprocess.run(
            [sys.executable, str(binary), "--version"],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        assert reported.splitlines()[0].startswith(f"k3s version {version} ")
    assert sums[versions[0]] != sums[versions[1]]


def test_the_programs_it_carries_are_unpacked_as_k3s_unpacks_its_own(tmp_path: Path) -> None:
    from kubani_lab.k3s.payload import program, unpack

    programs = tmp_path / "programs"
    programs.mkdir()
    for name in ("kube-components", "kwok"):
        (programs / name).write_text(f'#!/bin/sh\necho {name} "$@"\n')
    folder = build_k3s_artifacts(
        tmp_path / "release",
        "v1.35.4+k3s1",
        {name: programs / name for name in ("kube-components", "kwok")},
    )
    binary = folder / "k3s"
    reported = subprocess.run(
        [sys.executable, str(binary), "--version"], capture_output=True, text=True, check=True
    ).stdout
    assert reported.startswith("k3s version v1.35.4+k3s1 ")  # still runs with its payload
    data = tmp_path / "data-dir"
    bin_dir = unpack(binary, data)
    assert bin_dir is not None
    ran = subprocess.run([str(bin_dir / "kwok"), "--x"], capture_output=True, text=True, check=True)
    assert ran.stdout == "kwok --x\n"
    # The control plane's programs wait for their first use (an agent never writes them).
    assert not (bin_dir / "kube-components").exists()
    components = program(bin_dir, "kube-components")
    assert components == bin_dir / "kube-components"
    ran = subprocess.run([str(components), "kubectl"], capture_output=True, text=True, check=True)
    assert ran.stdout == "kube-components kubectl\n"
    assert program(bin_dir, "source-controller") is None  # not carried by this one
    assert sorted(p.name for p in bin_dir.iterdir()) == ["kube-components", "kwok"]
    current = data / "data" / "current"
    assert current.resolve() == bin_dir.parent.resolve()
    assert unpack(binary, data) == bin_dir  # kept, not unpacked again
    # An upgraded k3s brings its own set and switches to it.
    (programs / "kwok").write_text("#!/bin/sh\necho newer\n")
    upgraded = build_k3s_artifacts(tmp_path / "upgrade", "v1.35.4+k3s2",
                                   {"kwok": programs / "kwok"})  # fmt: skip
    newer = unpack(upgraded / "k3s", data)
    assert newer is not None and newer != bin_dir
    assert current.resolve() == newer.parent.resolve()
    # The old set's archive on disk is replaced: it unpacks nothing more from the new one.
    (bin_dir / "kube-components").unlink()
    binary.write_bytes((upgraded / "k3s").read_bytes())
    assert program(bin_dir, "kube-components") is None
    assert unpack(build_k3s_artifacts(tmp_path / "plain", "v1.35.4+k3s1") / "k3s", data) is None


def test_a_cached_release_is_built_once_and_carries_its_programs_compressed(
    tmp_path: Path,
) -> None:
    import zipfile

    program = tmp_path / "kube-components"
    program.write_bytes(b"#!/bin/sh\n" + b"echo the same line again and again\n" * 40000)
    cache = tmp_path / "cache"

    def programs(lab: str, shim_text: str = "#!/bin/sh\nexec true\n") -> dict[str, Path]:
        shim = tmp_path / lab / "payload" / "shim"  # each lab writes its own copy
        shim.parent.mkdir(parents=True, exist_ok=True)
        shim.write_text(shim_text)
        return {"kube-components": program, "shim": shim}

    first = build_k3s_artifacts(tmp_path / "lab-1", "v1.35.4+k3s1", programs("lab-1"),
                                cache=cache)  # fmt: skip
    [cached] = cache.glob("k3s-*")
    built_at = (cached / "k3s").stat().st_mtime_ns
    second = build_k3s_artifacts(tmp_path / "lab-2", "v1.35.4+k3s1", programs("lab-2"),
                                 cache=cache)  # fmt: skip
    assert [p.name for p in cache.glob("k3s-*")] == [cached.name]
    assert (cached / "k3s").stat().st_mtime_ns == built_at  # copied, not built again
    assert (first / "k3s").read_bytes() == (second / "k3s").read_bytes()
    listed = (second / "sha256sum-amd64.txt").read_text().split()
    assert listed == [hashlib.sha256((second / "k3s").read_bytes()).hexdigest(), "k3s"]
    with zipfile.ZipFile(second / "k3s") as archive:
        [member] = [i for i in archive.infolist() if i.filename.endswith("/kube-components")]
    assert member.compress_type == zipfile.ZIP_DEFLATED
    assert member.compress_size < program.stat().st_size // 10
    # Another release is its own entry.
    build_k3s_artifacts(tmp_path / "lab-3", "v1.35.4+k3s2", programs("lab-3"),
                        cache=cache)  # fmt: skip
    assert len(list(cache.glob("k3s-*"))) == 2
    # And so is another shim.
    build_k3s_artifacts(tmp_path / "lab-4", "v1.35.4+k3s2", programs("lab-4", "#!/bin/sh\n"),
                        cache=cache)  # fmt: skip
    assert len(list(cache.glob("k3s-*"))) == 3


def test_node_side_code_imports_only_what_nodes_have(tmp_path: Path) -> None:
    """Every module the stand-ins' archive carries, imported by an isolated Python that
    finds only the standard library, the archive and copies of PyYAML and cryptography with
    its CFFI backend (a Debian node's python3-yaml and python3-cryptography): nothing else is
    reachable, so an import of anything else fails here."""
    import shutil
    import zipfile

    import _cffi_backend
    import cryptography
    import yaml

    from kubani_lab.artifacts import build_zipapp

    archive = build_zipapp(tmp_path / "k3s", "kubani_lab.k3s.main", "version='v0'")
    packages = tmp_path / "dist-packages"
    for package in (yaml, cryptography):
        source = Path(package.__file__).parent
        shutil.copytree(source, packages / source.name)
    shutil.copy2(_cffi_backend.__file__, packages)
    with zipfile.ZipFile(archive) as carried:
        modules = sorted(
            name.removesuffix(".py").removesuffix("/__init__").replace("/", ".")
            for name in carried.namelist()
            if name.endswith(".py") and name != "__main__.py"
        )
    assert "kubani_lab.k3s.server" in modules and "kubani_lab.standins.nvidia_smi" in modules
    probe = (
        "import importlib, sys\n"
        f"sys.path[:0] = [{str(archive)!r}, {str(packages)!r}]\n"
        f"for name in {modules!r}:\n    importlib.import_module(name)\n"
        "print(' '.join(sorted({m.split('.')[0] for m in sys.modules}"
        " - set(sys.stdlib_module_names) - set(sys.builtin_module_names))))\n"
    )
    ran = subprocess.run([sys.executable, "-I", "-S", "-c", probe],
                         capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert ran.returncode == 0, ran.stderr[-3000:]
    loaded = {name for name in ran.stdout.split() if not name.startswith("_cython_")}
    # Besides the packages: the script itself, and the modules that PyYAML's and
    # cryptography's compiled parts register (Cython's runtime, the OpenSSL binding).
    carried = {"kubani", "kubani_lab", "yaml", "_yaml", "cryptography", "_cffi_backend"}
    assert loaded <= carried | {"__main__", "cython_runtime", "_openssl"}


def test_the_tailscale_release_has_the_published_layout_and_checksum(tmp_path: Path) -> None:
    import tarfile

    from kubani_lab.artifacts import build_tailscale_release

    binaries = tmp_path / "build"
    binaries.mkdir()
    for name in ("tailscale", "tailscaled"):
        (binaries / name).write_bytes(b"\x7fELF " + name.encode())
    folder = tmp_path / "airgap"
    archive = build_tailscale_release(folder, binaries, "1.102.5", "[Unit]\n")
    assert archive == folder / "tailscale_1.102.5_amd64.tgz"
    published = (folder / "tailscale_1.102.5_amd64.tgz.sha256").read_text().strip()
    assert published == hashlib.sha256(archive.read_bytes()).hexdigest()
    with tarfile.open(archive) as tar:
        names = sorted(tar.getnames())
        unit = tar.extractfile("tailscale_1.102.5_amd64/systemd/tailscaled.service")
        assert unit is not None and unit.read() == b"[Unit]\n"
    assert names == [
        f"tailscale_1.102.5_amd64/{n}"
        for n in (
            "systemd/tailscaled.defaults",
            "systemd/tailscaled.service",
            "tailscale",
            "tailscaled",
        )
    ]
    built = archive.stat().st_mtime_ns
    assert build_tailscale_release(folder, binaries, "1.102.5", "[Unit]\n") == archive
    assert archive.stat().st_mtime_ns == built  # unchanged inputs: not rebuilt
    (binaries / "tailscaled").write_bytes(b"\x7fELF newer tailscaled")
    build_tailscale_release(folder, binaries, "1.102.5", "[Unit]\n")
    assert (folder / "tailscale_1.102.5_amd64.tgz.sha256").read_text().strip() != published


def test_the_pinned_tailscale_version_is_read_from_go_mod() -> None:
    from kubani_lab.components import TAILSCALE, pinned_version

    version = pinned_version(TAILSCALE)
    assert version[0].isdigit() and version.count(".") == 2
