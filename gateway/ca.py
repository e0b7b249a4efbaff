"""The interception CA: created on first start in the data dir, in the layout mitmproxy reads.

    <data-dir>/ca/mitmproxy-ca.pem        private key + certificate (0600: protect it)
    <data-dir>/ca/mitmproxy-ca-cert.pem   certificate only: what workstations must trust
    <data-dir>/ca/greenroom-ca.pem        the same certificate under a name people recognise

Bring your own studio CA: put `cat ca.key ca.crt > <data-dir>/ca/mitmproxy-ca.pem` in place (and
the certificate as mitmproxy-ca-cert.pem) before the first start.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from gateway.errors import CertificateError

__all__ = ["CA_CERT_NAME", "ca_dir", "ensure_ca"]

CA_CERT_NAME = "mitmproxy-ca-cert.pem"
_CA_KEY_AND_CERT = "mitmproxy-ca.pem"
_FRIENDLY = "greenroom-ca.pem"


def ca_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "ca"


def ensure_ca(data_dir: str | Path, common_name: str = "Greenroom AI Gateway CA") -> Path:
    """Create the CA if the data dir has none; return the path of the certificate clients trust."""
    directory = ca_dir(data_dir)
    cert_path = directory / CA_CERT_NAME
    combined = directory / _CA_KEY_AND_CERT
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if combined.exists():
            if not cert_path.exists():
                cert_path.write_bytes(_certificate_block(combined.read_bytes()))
            _ensure_friendly(directory, cert_path)
            return cert_path
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = _self_signed(key, common_name)
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        _write_private(combined, key_pem + cert_pem)
        cert_path.write_bytes(cert_pem)
        _ensure_friendly(directory, cert_path)
    except OSError as exc:
        raise CertificateError(f"cannot create the CA in {directory}: {exc.strerror or exc}") from exc
    return cert_path


def _self_signed(key: rsa.RSAPrivateKey, common_name: str) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Greenroom"),
    ])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=2))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _certificate_block(pem: bytes) -> bytes:
    start = pem.find(b"-----BEGIN CERTIFICATE-----")
    if start < 0:
        raise CertificateError("the CA file holds no certificate")
    return pem[start:]


def _ensure_friendly(directory: Path, cert_path: Path) -> None:
    friendly = directory / _FRIENDLY
    if not friendly.exists():
        friendly.write_bytes(cert_path.read_bytes())
