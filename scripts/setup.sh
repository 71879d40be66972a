#!/usr/bin/env bash
# Shared set-up for a fresh machine: uv (through pip if missing) and the locked environment.
# Sourced by main.sh and test.sh; safe to run again.
set -euo pipefail

KUBANI_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export KUBANI_ROOT

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

cd "$KUBANI_ROOT"
"${UV[@]}" sync --frozen --quiet
