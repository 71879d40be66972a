"""The cluster's certificates and tokens, in K3s's files and formats.

``server-ca`` signs the serving certificate (SANs from tls-san, node-ip, advertise-address);
``client-ca`` signs client certificates (the admin kubeconfig). The join token has K3s's
full form ``K10<sha256 of the server CA>::server:<secret>``.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

TEN_YEARS = datetime.timedelta(days=3650)
ONE_YEAR = datetime.timedelta(days=365)


def write_file(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Write ``path`` atomically (a hidden partial file renamed over it), with ``mode``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(data)
    partial.chmod(mode)
    partial.replace(path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    pem: bytes = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return pem


def _load_key(path: Path) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    return key


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def make_ca(cert_path: Path, key_path: Path, common_name: str) -> None:
    if cert_path.exists() and key_path.exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, f"{common_name}@{int(_now().timestamp())}")]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + TEN_YEARS)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(key, hashes.SHA256())
    )
    write_file(key_path, _key_pem(key))
    write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def make_signing_key(key_path: Path) -> None:
    """A private key for signing service account tokens (kept once made)."""
    if key_path.exists():
        return
    key = ec.generate_private_key(ec.SECP256R1())
    # "EC PRIVATE KEY" (SEC 1): kube-apiserver reads the public half from the same file.
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    write_file(key_path, pem)


def issue(
    ca_cert: Path,
    ca_key: Path,
    cert_path: Path,
    key_path: Path,
    common_name: str,
    organization: str | None = None,
    sans: list[str] | None = None,
    server: bool = False,
    organizations: Sequence[str] = (),
    client_too: bool = False,  # a server certificate also used as a client (etcd peers)
) -> None:
    authority = x509.load_pem_x509_certificate(ca_cert.read_bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    groups = [*([organization] if organization else []), *organizations]
    attributes = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, group) for group in groups]
    attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attributes))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_now() - datetime.timedelta(minutes=5))
        .not_valid_after(_now() + ONE_YEAR)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [x509.oid.ExtendedKeyUsageOID.SERVER_AUTH] * server
                + [x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH] * (client_too or not server)
            ),
            critical=False,
        )
    )
    if sans:
        names: list[x509.GeneralName] = []
        for san in dict.fromkeys(sans):
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(san)))
            except ValueError:
                names.append(x509.DNSName(san))
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    cert = builder.sign(_load_key(ca_key), hashes.SHA256())
    write_file(key_path, _key_pem(key))
    write_file(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def certificate_sans(path: Path) -> list[str]:
    cert = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [str(n.value) for n in names]


def ca_hash(ca_cert: Path) -> str:
    return hashlib.sha256(ca_cert.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Token:
    """A join token: the secret, and the CA hash when given in full form."""

    secret: str
    ca_hash: str | None = None
    username: str = "server"

    @classmethod
    def parse(cls, text: str) -> Token:
        text = text.strip()
        if text.startswith("K10") and "::" in text:
            head, _, rest = text.partition("::")
            user, _, secret = rest.partition(":")
            return cls(secret=secret, ca_hash=head[3:], username=user or "server")
        return cls(secret=text)

    def full(self, ca_cert: Path) -> str:
        return f"K10{ca_hash(ca_cert)}::{self.username}:{self.secret}"


def new_secret() -> str:
    return secrets.token_hex(16)


def basic_auth(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode()


def kubeconfig(
    server: str, ca_cert: Path, client_cert: Path, client_key: Path, name: str = "default"
) -> str:
    def b64(path: Path) -> str:
        return base64.b64encode(path.read_bytes()).decode()

    return (
        "apiVersion: v1\n"
        "clusters:\n- cluster:\n"
        f"    certificate-authority-data: {b64(ca_cert)}\n"
        f"    server: {server}\n"
        f"  name: {name}\n"
        f"contexts:\n- context:\n    cluster: {name}\n    user: {name}\n  name: {name}\n"
        f"current-context: {name}\n"
        "kind: Config\npreferences: {}\n"
        f"users:\n- name: {name}\n  user:\n"
        f"    client-certificate-data: {b64(client_cert)}\n"
        f"    client-key-data: {b64(client_key)}\n"
    )
