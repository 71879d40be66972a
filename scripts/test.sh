#!/usr/bin/env bash
# Fresh machine -> every check: lint, types, unit, property and end-to-end tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

run() { "${UV[@]}" run --frozen "$@"; }

run ruff check .
run ruff format --check .
run mypy
run pytest "$@"
