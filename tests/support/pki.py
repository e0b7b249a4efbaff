"""A throwaway test CA and one leaf certificate for the fake AI provider.

The leaf's SANs cover every host the fake answers for (FAKE_HOSTS), so a client or the gateway
that keeps SNI = the real provider host verifies successfully against the test CA only.

    python -m tests.support.pki OUT_DIR   -> ca.pem, ca.key, leaf.pem, leaf.key
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import sys
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["FAKE_HOSTS", "TEST_CA_CN", "TestPKI", "make_pki"]

FAKE_HOSTS: tuple[str, ...] = (
    "api.openai.com",
    "api.anthropic.com",
    "generativelanguage.googleapis.com",
    "api.elevenlabs.io",
    "chatgpt.com",
    "claude.ai",
    "gemini.google.com",
    "api.mistral.ai",
    "api.stability.ai",
    "api.dev.runwayml.com",
    "www.example.org",
    "localhost",
    "127.0.0.1",
)

TEST_CA_CN = "greenroom-e2e-fake-origin-ca"


@dataclass(frozen=True)
class TestPKI:
    __test__ = False  # not a pytest test class

    dir: Path
    ca_cert: Path
    ca_key: Path
    leaf_cert: Path
    leaf_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def make_pki(out: str | Path, hosts: tuple[str, ...] = FAKE_HOSTS, ca_cn: str = TEST_CA_CN) -> TestPKI:
    """Create a fresh CA and a leaf for `hosts` in `out` (always regenerated)."""
    d = Path(out)
    d.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_cn))
        .issuer_name(_name(ca_cn))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name("greenroom-fake-provider"))
        .issuer_name(ca.subject)
        .public_key(leaf_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pki = TestPKI(d, d / "ca.pem", d / "ca.key", d / "leaf.pem", d / "leaf.key")
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.ca_key.write_bytes(_pem_key(ca_key))
    pki.ca_key.chmod(0o600)
    pki.leaf_cert.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    pki.leaf_key.write_bytes(_pem_key(leaf_key))
    pki.leaf_key.chmod(0o600)
    return pki


if __name__ == "__main__":
    print(make_pki(sys.argv[1] if len(sys.argv) > 1 else "var/test-pki"))
