"""``cluster-mgr secrets``: SOPS-encrypt Secrets for the GitOps tree; age keys."""

import sys
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Encrypt and decrypt Secrets with SOPS and age.")


@app.command()
def encrypt(
    file: Annotated[Path, typer.Argument(help="A YAML file to encrypt in place.")],
) -> None:
    """Encrypt FILE in place with the recipients of the tree's .sops.yaml."""
    from kubani.cli.output import success
    from kubani.gitops.sops import encrypt_in_place

    encrypt_in_place(file)
    success(f"encrypted {file} (data/stringData only); commit it")


@app.command()
def decrypt(
    file: Annotated[Path, typer.Argument(help="A SOPS-encrypted YAML file.")],
    key_file: Annotated[
        Path | None,
        typer.Option(
            "--key-file", help="age identity (default: $SOPS_AGE_KEY_FILE).", show_default=False
        ),
    ] = None,
) -> None:
    """Print FILE decrypted on stdout (nothing is written to disk)."""
    from kubani.gitops.sops import decrypt as run_decrypt

    sys.stdout.write(run_decrypt(file, key_file))


@app.command()
def keygen(
    output: Annotated[Path, typer.Option("--output", "-o", help="Where to write the age key.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Create an age key pair: the identity file (0600) and the recipient for .sops.yaml."""
    from kubani.cli.output import emit_json, note, success
    from kubani.errors import KubaniError
    from kubani.gitops.age import generate

    if output.exists():
        raise KubaniError(
            f"will not write {output}",
            "the file exists (a key would be lost)",
            "choose another path",
        )
    key = generate()
    output.parent.mkdir(parents=True, exist_ok=True)
    import os

    descriptor = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.key_file())
    if json_output:
        emit_json({"key_file": str(output), "recipient": key.recipient})
        return
    success(f"wrote {output} (0600); keep it out of Git")
    note(f"recipient (put it in gitops/.sops.yaml): {key.recipient}")
    note(f"give it to the cluster: gitops_sops_age_key_file: {output} in group_vars")
