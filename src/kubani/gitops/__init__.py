"""The GitOps tree: Flux object schemas, validation, app scaffolding, SOPS helpers."""
