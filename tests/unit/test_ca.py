"""gateway/ca.py: the interception CA, created once in mitmproxy's layout."""

from __future__ import annotations

import datetime as dt
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway.ca import CA_CERT_NAME, ca_dir, ensure_ca
from gateway.errors import CertificateError


@pytest.fixture(scope="module")
def created(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("data")
    return data, ensure_ca(data)


def test_layout(created: tuple[Path, Path]) -> None:
    """The CA lands in <data>/ca with mitmproxy's file names and a friendly copy of the certificate."""
    data, cert_path = created
    directory = ca_dir(data)
    assert cert_path == directory / CA_CERT_NAME
    assert sorted(p.name for p in directory.iterdir()) == ["greenroom-ca.pem", "mitmproxy-ca-cert.pem",
                                                           "mitmproxy-ca.pem"]
    assert (directory / "greenroom-ca.pem").read_bytes() == cert_path.read_bytes()
    assert b"PRIVATE KEY" not in cert_path.read_bytes()


def test_key_file_is_private(created: tuple[Path, Path]) -> None:
    """The key file is 0600 and its directory 0700."""
    data, _ = created
    assert stat.S_IMODE((ca_dir(data) / "mitmproxy-ca.pem").stat().st_mode) == 0o600
    assert stat.S_IMODE(ca_dir(data).stat().st_mode) & 0o077 == 0


def test_certificate_is_a_ca(created: tuple[Path, Path]) -> None:
    """The certificate is a self-signed CA that may sign leaf certificates, valid now, matching its key."""
    data, cert_path = created
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    constraints = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert constraints.critical and constraints.value.ca
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.key_cert_sign
    assert cert.issuer == cert.subject
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "Greenroom AI Gateway CA"
    now = dt.datetime.now(dt.UTC)
    assert cert.not_valid_before_utc < now < cert.not_valid_after_utc
    combined = (ca_dir(data) / "mitmproxy-ca.pem").read_bytes()
    key = serialization.load_pem_private_key(combined, password=None)
    assert key.public_key().public_numbers() == cert.public_key().public_numbers()  # type: ignore[union-attr]
    cert.verify_directly_issued_by(cert)


def test_reused_not_recreated(created: tuple[Path, Path]) -> None:
    """A second start keeps the existing CA byte for byte."""
    data, cert_path = created
    before = {p.name: p.read_bytes() for p in ca_dir(data).iterdir()}
    assert ensure_ca(data) == cert_path
    assert {p.name: p.read_bytes() for p in ca_dir(data).iterdir()} == before


def _own_ca() -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Studio Root CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def test_bring_your_own_ca(tmp_path: Path) -> None:
    """A studio CA put in place as `key + cert` is used as is; the trusted certificate is extracted from it."""
    key_pem, cert_pem = _own_ca()
    directory = ca_dir(tmp_path)
    directory.mkdir(parents=True)
    (directory / "mitmproxy-ca.pem").write_bytes(key_pem + cert_pem)
    cert_path = ensure_ca(tmp_path)
    assert cert_path.read_bytes() == cert_pem
    assert (directory / "greenroom-ca.pem").read_bytes() == cert_pem
    assert (directory / "mitmproxy-ca.pem").read_bytes() == key_pem + cert_pem


def test_bring_your_own_ca_with_its_certificate(tmp_path: Path) -> None:
    """When both files are supplied neither is touched."""
    key_pem, cert_pem = _own_ca()
    directory = ca_dir(tmp_path)
    directory.mkdir(parents=True)
    (directory / "mitmproxy-ca.pem").write_bytes(key_pem + cert_pem)
    (directory / CA_CERT_NAME).write_bytes(cert_pem)
    assert ensure_ca(tmp_path).read_bytes() == cert_pem
    assert (directory / "mitmproxy-ca.pem").read_bytes() == key_pem + cert_pem


def test_combined_file_without_certificate(tmp_path: Path) -> None:
    """A key-only combined file is a CertificateError, not a half-written CA."""
    key_pem, _ = _own_ca()
    directory = ca_dir(tmp_path)
    directory.mkdir(parents=True)
    (directory / "mitmproxy-ca.pem").write_bytes(key_pem)
    with pytest.raises(CertificateError):
        ensure_ca(tmp_path)
    assert not (directory / CA_CERT_NAME).exists()


def test_unwritable_data_dir(tmp_path: Path) -> None:
    """An OSError becomes a CertificateError naming the directory."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CertificateError, match="cannot create the CA"):
        ensure_ca(blocker)
