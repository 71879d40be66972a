"""Ansible Vault values: inline ``!vault`` strings read, and opened only when Kubani must
check what they hold (format 1.1 and 1.2, AES256, as ``ansible-vault encrypt_string``
writes them).

The password comes the way Ansible takes it: a file named by ``--vault-password-file``
or ``ANSIBLE_VAULT_PASSWORD_FILE``; an executable file is a script whose output is the
password.
"""

from __future__ import annotations

import binascii
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kubani import userfiles
from kubani.errors import KubaniError
from kubani.inventory.fastyaml import UnsafeValue, VaultValue
from kubani.models.problems import Problems

PASSWORD_FILE_ENV = "ANSIBLE_VAULT_PASSWORD_FILE"
_HEADER = "$ANSIBLE_VAULT"
_KEY_BYTES = 32
_IV_BYTES = 16
_ITERATIONS = 10_000
_PASSWORD_FIX = f"give the vault password with --vault-password-file FILE or {PASSWORD_FILE_ENV}"


class VaultError(KubaniError):
    """A vaulted value that cannot be opened."""


class VaultPasswordError(KubaniError):
    """The password file or script named cannot give a password: one error for the run."""


def password_file_from_environment() -> Path | None:
    named = os.environ.get(PASSWORD_FILE_ENV, "").strip()
    return Path(named).expanduser() if named else None


def read_password(path: Path) -> bytes:
    """The password in ``path``, or printed by it when it is an executable script."""
    try:
        if os.access(path, os.X_OK) and path.is_file():
            done = subprocess.run([str(path)], capture_output=True, timeout=60, check=False)
            if done.returncode != 0:
                raise VaultPasswordError(
                    f"cannot get the vault password from {path}",
                    f"the script exited with {done.returncode}",
                    "run it by hand to see why",
                )
            secret = done.stdout.strip()
        else:
            secret = userfiles.read_bytes(path).strip()
    except subprocess.TimeoutExpired as exc:
        raise VaultPasswordError(
            f"cannot get the vault password from {path}", "the script ran for 60 s", None
        ) from exc
    except OSError as exc:
        raise VaultPasswordError(
            f"cannot read the vault password file {path}", exc.strerror or str(exc), _PASSWORD_FIX
        ) from exc
    if not secret:
        raise VaultPasswordError(
            f"cannot use the vault password file {path}", "it is empty", _PASSWORD_FIX
        )
    return secret


def _payload(vaulttext: str) -> tuple[bytes, bytes, bytes]:
    lines = [line.strip() for line in vaulttext.strip().splitlines() if line.strip()]
    if not lines or not lines[0].startswith(_HEADER):
        raise ValueError("it does not start with $ANSIBLE_VAULT")
    header = lines[0].split(";")
    if len(header) < 3 or header[1] not in ("1.1", "1.2") or header[2].strip() != "AES256":
        raise ValueError(f"format {';'.join(header[1:3])} is not one Kubani reads (1.1/1.2 AES256)")
    try:
        inner = binascii.unhexlify("".join(lines[1:]))
        salt, mac, ciphertext = (binascii.unhexlify(part) for part in inner.split(b"\n", 2))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("its body is not the hex Ansible writes") from exc
    return salt, mac, ciphertext


def decrypt(vaulttext: str, password: bytes, where: str) -> str:
    """The plain text of one vaulted value; ``where`` names it in errors."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, padding
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    from cryptography.hazmat.primitives.hmac import HMAC
    from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

    try:
        salt, mac, ciphertext = _payload(vaulttext)
    except ValueError as exc:
        raise VaultError(f"cannot open the vaulted value {where}", str(exc), None) from exc
    derived = PBKDF2HMAC(
        algorithm=hashes.SHA256(),
        length=2 * _KEY_BYTES + _IV_BYTES,
        salt=salt,
        iterations=_ITERATIONS,
    ).derive(password)
    cipher_key, mac_key, iv = (
        derived[:_KEY_BYTES],
        derived[_KEY_BYTES : 2 * _KEY_BYTES],
        derived[2 * _KEY_BYTES :],
    )
    check = HMAC(mac_key, hashes.SHA256())
    check.update(ciphertext)
    try:
        check.verify(mac)  # in constant time
    except InvalidSignature:
        raise VaultError(
            f"cannot open the vaulted value {where}",
            "the vault password does not match it",
            "give the password it was encrypted with",
        ) from None
    decryptor = Cipher(algorithms.AES(cipher_key), modes.CTR(iv)).decryptor()
    padded = decryptor.update(ciphertext) + decryptor.finalize()
    unpadder = padding.PKCS7(algorithms.AES.block_size).unpadder()
    try:
        plain = unpadder.update(padded) + unpadder.finalize()
        return plain.decode("utf-8")
    except (ValueError, UnicodeDecodeError) as exc:
        raise VaultError(
            f"cannot open the vaulted value {where}", "its content is damaged", None
        ) from exc


class VaultKey:
    """The password, read once and only when a vaulted value has to be opened."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._password: bytes | None = None

    def open(self, vaulttext: str, where: str) -> str:
        if self.path is None:
            raise VaultError(
                f"cannot check {where}",
                "it is encrypted with Ansible Vault and no vault password was given",
                _PASSWORD_FIX,
            )
        if self._password is None:
            self._password = read_password(self.path)
        return decrypt(vaulttext, self._password, where)


def reveal(value: Any, where: str, key: VaultKey) -> Any:
    """``value`` with every vaulted string opened and ``!unsafe`` strings made plain, for
    checks only: what is written back is always the file's own text."""
    if isinstance(value, VaultValue):
        return key.open(str(value), where)
    if isinstance(value, UnsafeValue):
        return str(value)
    if isinstance(value, dict):
        return {k: reveal(v, f"{where}.{k}", key) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v, f"{where}[{i}]", key) for i, v in enumerate(value)]
    return value


def reveal_declared(
    variables: Mapping[str, Any],
    declared: frozenset[str],
    where: str,
    key: VaultKey,
    problems: Problems,
) -> dict[str, Any]:
    """The variables Kubani checks, opened; the others stay as written (a vaulted become
    password is Ansible's business). A value that cannot be opened becomes a problem."""
    revealed = dict(variables)
    for name in declared.intersection(variables):
        try:
            revealed[name] = reveal(variables[name], f"{where}.{name}", key)
        except VaultError as exc:
            fix = f" (fix: {exc.fix})" if exc.fix else ""
            problems.error(f"{where}.{name}", f"{exc.why}{fix}")
            del revealed[name]
    return revealed
