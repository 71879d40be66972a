"""The inventory, the cluster settings and tailnet peers as models: import each from its
module. The package itself imports nothing, so that a plain-data module (``peer``,
``entries``, ``addresses``) loads without pydantic, which only the validating models need."""
