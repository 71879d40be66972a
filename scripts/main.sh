#!/usr/bin/env bash
# Fresh machine -> Kubani's main job. Until the local lab lands this checks the example
# inventories the way a user checks theirs before provisioning.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

for inventory in ansible/inventory/hosts.yml ansible/inventory/examples/*.yml; do
    "${UV[@]}" run --frozen cluster-mgr --inventory "$inventory" validate
done
