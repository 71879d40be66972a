"""Which hosts a play of Kubani's runs on, decided from what earlier plays of the run found.

A play whose host pattern templates to no hosts is skipped before Ansible sets it up (no
strategy, no connections): a run that finds every node as the last complete run left it
then costs the controller its first play and nothing more.

Beside the playbooks, not in ../filter_plugins: a play's host pattern is templated when the
playbook is loaded (a syntax check too), and Ansible finds the filters beside a playbook
without ansible.cfg (ansible-lint's syntax check runs without it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The group the node_state role's detect step puts every node in when all are current
# (the role's node_state_current_group names it too; a unit test holds the two equal).
NODE_STATE_CURRENT_GROUP = "node_state_current"


def kubani_unless_current(pattern: Any, groups: Any) -> Any:
    """``pattern``, or no hosts when this run found every node current."""
    if isinstance(groups, Mapping) and NODE_STATE_CURRENT_GROUP in groups:
        return []
    return pattern


def kubani_gitops_hosts(groups: Any, hostvars: Any = None) -> list[str]:
    """The first control plane when it has a Git repository to hand the cluster to, else
    none (the GitOps play then does not start). Ansible gives a run's first play no
    ``hostvars`` (``None`` here): the first control plane then, and the play's own check
    decides."""
    control_planes = groups.get("control_plane") if isinstance(groups, Mapping) else None
    if not isinstance(control_planes, list) or not control_planes:
        return []
    first = control_planes[0]
    if not isinstance(hostvars, Mapping):
        return [first]
    repository = hostvars[first].get("git_repo_url") if first in hostvars else None
    return [first] if isinstance(repository, str) and repository else []


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "kubani_unless_current": kubani_unless_current,
            "kubani_gitops_hosts": kubani_gitops_hosts,
        }
