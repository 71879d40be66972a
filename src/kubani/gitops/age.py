"""age X25519 key pairs, as ``age-keygen`` writes them, for SOPS recipients.

The identity is ``AGE-SECRET-KEY-1…`` and the recipient ``age1…``; the keys and their
encoding come from rage (the Rust age implementation) through pyrage.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class AgeKey:
    identity: str  # secret: AGE-SECRET-KEY-1...
    recipient: str  # public: age1...

    def key_file(self) -> str:
        created = datetime.now(UTC).replace(microsecond=0).isoformat()
        return f"# created: {created}\n# public key: {self.recipient}\n{self.identity}\n"


def generate() -> AgeKey:
    from pyrage import x25519

    identity = x25519.Identity.generate()
    return AgeKey(identity=str(identity), recipient=str(identity.to_public()))
