#!/usr/bin/python
"""Emit an Ansible warning (shown as [WARNING]) without failing or changing anything."""

from __future__ import annotations

DOCUMENTATION = r"""
module: kubani_warn
short_description: Show a warning
description: Returns the message as an Ansible warning; changes nothing.
options:
  msg:
    description: The warning.
    type: str
    required: true
author: Kubani
"""

from ansible.module_utils.basic import AnsibleModule


def main() -> None:
    module = AnsibleModule(
        argument_spec={"msg": {"type": "str", "required": True}}, supports_check_mode=True
    )
    module.warn(module.params["msg"])
    module.exit_json(changed=False)


if __name__ == "__main__":
    main()
