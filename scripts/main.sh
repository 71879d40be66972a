#!/usr/bin/env bash
# Fresh machine -> Kubani's main job on the local lab: boot three real Debian nodes on a
# simulated tailnet (as root), check the inventory the lab wrote, and show the lab.
# Provisioning the lab with the Ansible playbooks is added with the Ansible layer.
# `uv run cluster-mgr lab down` removes everything again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

run() { "${UV[@]}" run --frozen "$@"; }

run cluster-mgr lab up --nodes 3 --control-planes 1
inventory="$(run cluster-mgr lab status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["inventory"])')"
run cluster-mgr --inventory "$inventory" validate
run cluster-mgr --inventory "$inventory" discover --tailscale-bin "$(dirname "$inventory")/../bin/tailscale"
run cluster-mgr lab status
