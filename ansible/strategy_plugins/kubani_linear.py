"""The strategy Kubani's playbooks run with: Mitogen's linear strategy, else Ansible's own.

Mitogen keeps one Python interpreter per node for the whole run and runs modules in it,
where Ansible's linear strategy starts an SSH session and a new interpreter for every task:
a run that changes nothing costs about half as long (``benchmarks/lab_provision.py``). Task
order, results and callbacks are linear's either way, so a machine without Mitogen runs the
same playbooks, only slower.
"""

from __future__ import annotations

try:
    from ansible_mitogen.plugins.strategy.mitogen_linear import StrategyModule
except ImportError:  # Mitogen is not installed beside this Ansible
    from ansible.plugins.strategy.linear import StrategyModule

__all__ = ["StrategyModule"]
