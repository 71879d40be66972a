#!/usr/bin/env bash
# Fresh machine -> every check: Python lint and types, Ansible lint and syntax, then the unit,
# property and lab end-to-end tests.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"

run() { "${UV[@]}" run --frozen "$@"; }

run ruff check .
run ruff format --check .
run mypy
run lint-imports
run yamllint ansible .yamllint .ansible-lint
run yamllint -c gitops/.yamllint gitops
run cluster-mgr gitops validate --path gitops
(
    cd ansible
    for playbook in playbooks/*.yml; do
        ANSIBLE_CONFIG=ansible.cfg run ansible-playbook --syntax-check -i inventory/examples/minimal.yml "$playbook" >/dev/null
    done
)
NO_COLOR=1 run ansible-lint --format=pep8
if [ "$(id -u)" = 0 ]; then
    # The lab's real components, built once per machine (minutes the first time), before the
    # lab tests whose per-test time limit a first build would exceed.
    run cluster-mgr lab build
fi
# The unit and property tests (CPU) run beside the lab tests (mostly waiting on nodes); both
# must pass. The unit tests' report follows the lab's. The lab tests run on two workers, a
# test module at a time each (a module's tests share its lab; labs on one machine never
# share an address).
unit_log="$(mktemp)"
run pytest -m "not lab" "$@" >"$unit_log" 2>&1 &
unit_pid=$!
lab_status=0
run pytest -m lab -n 2 --dist loadfile "$@" || lab_status=$?
unit_status=0
wait "$unit_pid" || unit_status=$?
cat "$unit_log"
rm -f "$unit_log"
# pytest's 5 is "no test collected": fine for one half when a selection leaves it empty.
for status in "$lab_status" "$unit_status"; do
    if [ "$status" != 0 ] && [ "$status" != 5 ]; then
        exit "$status"
    fi
done
[ "$lab_status" = 0 ] || [ "$unit_status" = 0 ]
