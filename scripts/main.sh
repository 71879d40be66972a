#!/usr/bin/env bash
# Fresh machine -> Kubani's main job on the local lab: boot three real Debian nodes on a
# simulated tailnet (as root), check the inventory the lab wrote, provision K3s on the
# tailnet addresses with the playbooks, and show the cluster.
# `uv run cluster-mgr lab down` removes everything again.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

run() { "${UV[@]}" run --frozen "$@"; }

run cluster-mgr lab up --nodes 3 --control-planes 1
lab_dir="$(run cluster-mgr lab status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["inventory"].rsplit("/inventory/", 1)[0])')"
run cluster-mgr --inventory "$lab_dir/inventory/hosts.yml" validate
run cluster-mgr --inventory "$lab_dir/inventory/hosts.yml" discover --tailscale-bin "$lab_dir/bin/tailscale"
(cd ansible && ANSIBLE_CONFIG=ansible.cfg run ansible-playbook -i "$lab_dir/inventory/hosts.yml" playbooks/site.yml)
run cluster-mgr lab status
if command -v kubectl >/dev/null 2>&1; then
    kubectl --kubeconfig "$lab_dir/kubeconfig" get nodes -o wide
fi
