"""age X25519 key pairs, as ``age-keygen`` writes them, for SOPS recipients.

The identity is ``AGE-SECRET-KEY-1…`` and the recipient ``age1…``: the 32-byte X25519
private and public keys in Bech32 (BIP 173) with those human-readable parts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

_CHARSET = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_GENERATOR = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)


def _polymod(values: list[int]) -> int:
    checksum = 1
    for value in values:
        top = checksum >> 25
        checksum = (checksum & 0x1FFFFFF) << 5 ^ value
        for index, generator in enumerate(_GENERATOR):
            if (top >> index) & 1:
                checksum ^= generator
    return checksum


def _expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _to_five_bits(data: bytes) -> list[int]:
    accumulator, bits, out = 0, 0, []
    for byte in data:
        accumulator = (accumulator << 8) | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            out.append((accumulator >> bits) & 31)
    if bits:
        out.append((accumulator << (5 - bits)) & 31)
    return out


def bech32_encode(hrp: str, data: bytes) -> str:
    words = _to_five_bits(data)
    polymod = _polymod([*_expand(hrp), *words, 0, 0, 0, 0, 0, 0]) ^ 1
    checksum = [(polymod >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_CHARSET[w] for w in words + checksum)


@dataclass(frozen=True)
class AgeKey:
    identity: str  # secret: AGE-SECRET-KEY-1...
    recipient: str  # public: age1...

    def key_file(self) -> str:
        created = datetime.now(UTC).replace(microsecond=0).isoformat()
        return f"# created: {created}\n# public key: {self.recipient}\n{self.identity}\n"


def generate() -> AgeKey:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    private = X25519PrivateKey.generate()
    secret = private.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    public = private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    return AgeKey(
        identity=bech32_encode("age-secret-key-", secret).upper(),
        recipient=bech32_encode("age", public),
    )
