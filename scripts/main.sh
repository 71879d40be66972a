#!/usr/bin/env bash
# Fresh machine -> Kubani's main job on the local lab: boot three real Debian nodes on a
# tailnet of their own (real tailscaled and headscale, as root), check the inventory the lab
# wrote, list the tailnet (its CLI and headscale's API), serve the GitOps tree from a Git
# repository on a node, run the doctor, provision K3s on the tailnet addresses and hand the
# cluster to Flux (cluster-mgr provision), and show the cluster.
# `uv run cluster-mgr lab down` removes everything again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

run() { "${UV[@]}" run --frozen "$@"; }

run cluster-mgr lab up --nodes 3 --control-planes 1
lab_json="$(run cluster-mgr lab status --json)"
# lab_value KEY [KEY...]: one value of `lab status --json`.
lab_value() {
    python3 -c 'import functools, json, sys
print(functools.reduce(lambda d, k: d[k], sys.argv[1:], json.load(sys.stdin)))' "$@" <<<"$lab_json"
}
inventory="$(lab_value inventory)"
lab_dir="${inventory%/inventory/hosts.yml}"
# This machine's view of the lab tailnet: the lab's own tailscaled (its socket, its TUN).
export KUBANI_TAILSCALE_BIN="$lab_dir/bin/tailscale"
run cluster-mgr --inventory "$inventory" validate
run cluster-mgr --inventory "$inventory" discover
# The same devices from the lab's headscale API (its CA trusted for this command only).
SSL_CERT_FILE="$(lab_value tailnet control_ca)" \
    HEADSCALE_URL="$(lab_value tailnet control_url)" \
    HEADSCALE_API_KEY="$(cat "$(lab_value tailnet control_api_key_file)")" \
    run cluster-mgr --inventory "$inventory" discover --source headscale
# GitOps: this repository's gitops/ tree, served from a Git repository on cp-1 over SSH.
run cluster-mgr lab gitops --path gitops
run cluster-mgr --inventory "$inventory" doctor
run cluster-mgr --inventory "$inventory" provision
run cluster-mgr --inventory "$inventory" status
if command -v kubectl >/dev/null 2>&1; then
    kubectl --kubeconfig "$lab_dir/kubeconfig" get nodes -o wide
fi
echo "Live view: uv run cluster-tui -i $inventory --tailscale-bin $KUBANI_TAILSCALE_BIN" >&2
