#!/usr/bin/env bash
# Shared set-up for a fresh machine: the lab's Debian packages (as root), uv (through pip if
# missing) and the locked environment. Sourced by main.sh and test.sh; safe to run again.
set -euo pipefail

KUBANI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KUBANI_ROOT

# gcc and libc6-dev: kube-components links kine's SQLite statically (cgo).
lab_packages=(debootstrap systemd-container openssh-client iproute2 git tmux nftables tcpdump
    gcc libc6-dev)
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=()
    for package in "${lab_packages[@]}"; do
        dpkg -s "$package" >/dev/null 2>&1 || missing+=("$package")
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "setup: installing ${missing[*]}" >&2
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
fi

# The lab builds its real components (tailscale, headscale, Kubernetes, KWOK, Flux) with Go.
if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
    export PATH="$PATH:/usr/local/go/bin"
fi
if ! command -v go >/dev/null 2>&1; then
    echo "setup: Go is not installed; the lab needs Go 1.26 or newer to build its real" \
        "components (https://go.dev/doc/install)" >&2
fi

if command -v uv >/dev/null 2>&1; then
    UV=(uv)
else
    if ! python3 -m uv --version >/dev/null 2>&1; then
        echo "setup: installing uv with pip" >&2
        python3 -m pip install --quiet --disable-pip-version-check uv
    fi
    UV=(python3 -m uv)
fi
export UV_PYTHON_DOWNLOADS=never
# The interpreter the environment is built on (UV_PYTHON, when set, decides). The
# distribution's python3 is built with profile-guided and link-time optimisation and links
# libpython statically; a version manager's local build (pyenv's default) does neither, and
# every cluster-mgr command and Ansible run costs about a fifth more CPU on it
# (benchmarks/README.md, session 32). 3.11 to 3.13: the versions the lock has wheels for.
if [ -z "${UV_PYTHON:-}" ] && [ -x /usr/bin/python3 ] &&
    /usr/bin/python3 -c 'import sys; sys.exit(not (3, 11) <= sys.version_info[:2] <= (3, 13))'; then
    export UV_PYTHON=/usr/bin/python3
fi

cd "$KUBANI_ROOT"
# Bytecode compiled at install: where PYTHONDONTWRITEBYTECODE is set (many containers, these
# machines), every run would otherwise compile what it imports again.
"${UV[@]}" sync --frozen --quiet --compile-bytecode
"${UV[@]}" run --frozen python -m compileall -q src lab/src  # the projects themselves (editable installs)
