#!/usr/bin/env bash
# Fresh machine -> Kubani's main job on the local lab: boot three real Debian nodes on a
# simulated tailnet (as root), check the inventory the lab wrote, serve the GitOps tree
# from a Git repository on a node, run the doctor, provision K3s on the tailnet addresses
# and hand the cluster to Flux (cluster-mgr provision), and show the cluster.
# `uv run cluster-mgr lab down` removes everything again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

run() { "${UV[@]}" run --frozen "$@"; }

run cluster-mgr lab up --nodes 3 --control-planes 1
lab_dir="$(run cluster-mgr lab status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["inventory"].rsplit("/inventory/", 1)[0])')"
inventory="$lab_dir/inventory/hosts.yml"
run cluster-mgr --inventory "$inventory" validate
run cluster-mgr --inventory "$inventory" discover --tailscale-bin "$lab_dir/bin/tailscale"
# GitOps: this repository's gitops/ tree, served from a Git repository on cp-1 over SSH.
run cluster-mgr lab gitops --path gitops
run cluster-mgr --inventory "$inventory" doctor
run cluster-mgr --inventory "$inventory" provision
run cluster-mgr --inventory "$inventory" status --tailscale-bin "$lab_dir/bin/tailscale"
if command -v kubectl >/dev/null 2>&1; then
    kubectl --kubeconfig "$lab_dir/kubeconfig" get nodes -o wide
fi
echo "Live view: uv run cluster-tui -i $inventory --tailscale-bin $lab_dir/bin/tailscale" >&2
