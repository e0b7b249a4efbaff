"""deploy/ca: bring-your-own studio CA, the Linux install script and the CLI environment.

The studio CA cases prove the whole path an operator follows: `cat key crt > <data-dir>/ca/
mitmproxy-ca.pem`, `ensure_ca` reuses it untouched, and mitmproxy signs leaf certificates with it.
The shell scripts run for real, against a temporary root and fake trust-store tools on PATH.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from mitmproxy.certs import CertStore

from gateway.ca import CA_CERT_NAME, ca_dir, ensure_ca

REPO = Path(__file__).resolve().parents[3]
CA_DEPLOY = REPO / "deploy" / "ca"
STUDIO_CN = "Studio Interception CA"


def _studio_ca(kind: str) -> tuple[bytes, bytes, x509.Certificate]:
    """A studio interception sub-CA: (key PEM, certificate PEM, certificate)."""
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    if kind == "ec":
        key = ec.generate_private_key(ec.SECP256R1())
        fmt = serialization.PrivateFormat.PKCS8
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        fmt = serialization.PrivateFormat.TraditionalOpenSSL  # `openssl genrsa` style
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, STUDIO_CN),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Studios"),
    ])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, fmt, serialization.NoEncryption())
    return key_pem, cert.public_bytes(serialization.Encoding.PEM), cert


@pytest.mark.parametrize("kind", ["rsa", "ec"])
def test_studio_ca_is_reused_and_signs_leaves(tmp_path: Path, kind: str) -> None:
    """`cat key crt > <data-dir>/ca/mitmproxy-ca.pem` before the first start: Greenroom uses that CA."""
    key_pem, cert_pem, studio = _studio_ca(kind)
    data_dir = tmp_path / "var"
    ca = ca_dir(data_dir)
    ca.mkdir(parents=True, mode=0o700)
    combined = ca / "mitmproxy-ca.pem"
    combined.write_bytes(key_pem + cert_pem)
    combined.chmod(0o600)

    cert_path = ensure_ca(data_dir)

    assert cert_path == ca / CA_CERT_NAME
    assert cert_path.read_bytes() == cert_pem  # the studio certificate, not a generated one
    assert (ca / "greenroom-ca.pem").read_bytes() == cert_pem
    assert combined.read_bytes() == key_pem + cert_pem  # never rewritten
    assert ensure_ca(data_dir).read_bytes() == cert_pem  # and again on the next start

    store = CertStore.from_store(ca, "mitmproxy", 2048)
    leaf = store.get_cert("api.openai.com", [x509.DNSName("api.openai.com")]).cert.to_cryptography()
    assert leaf.issuer == studio.subject
    leaf.verify_directly_issued_by(studio)  # signed with the studio key


def test_generated_ca_is_created_once(tmp_path: Path) -> None:
    """Without a studio CA, the first start generates one and later starts keep it."""
    first = ensure_ca(tmp_path).read_bytes()
    assert ensure_ca(tmp_path).read_bytes() == first
    assert (ca_dir(tmp_path) / "mitmproxy-ca.pem").stat().st_mode & 0o777 == 0o600


# --- install-ca-linux.sh -----------------------------------------------------------------------------


def _toolbox(tmp_path: Path, fake: str) -> tuple[dict[str, str], Path]:
    """PATH with only the utilities the script needs, plus a fake `fake` that logs its arguments."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "grep", "cp", "mkdir", "chmod", "dirname", "rm", "cat", "openssl"):
        found = shutil.which(tool)
        if found:
            (bin_dir / tool).symlink_to(found)
    log = tmp_path / f"{fake}.log"
    script = bin_dir / fake
    script.write_text(f'#!/bin/sh\necho "$0 $*" >> "{log}"\n')
    script.chmod(0o755)
    env = {"PATH": str(bin_dir), "GREENROOM_ROOT": str(tmp_path / "root"), "LC_ALL": "C"}
    return env, log


def _run_linux(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [shutil.which("sh") or "/bin/sh", str(CA_DEPLOY / "install-ca-linux.sh"), *args],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )


@pytest.mark.parametrize(
    ("fake", "target", "refresh"),
    [
        ("update-ca-certificates", "usr/local/share/ca-certificates/greenroom-ca.crt", ""),
        ("update-ca-trust", "etc/pki/ca-trust/source/anchors/greenroom-ca.pem", "extract"),
    ],
)
def test_linux_install_script(tmp_path: Path, fake: str, target: str, refresh: str) -> None:
    """Debian and Red Hat flavours: the certificate lands where the tool reads it, then the store is rebuilt."""
    env, log = _toolbox(tmp_path, fake)
    cert = ensure_ca(tmp_path / "var")
    result = _run_linux(env, str(cert))
    assert result.returncode == 0, result.stderr
    installed = tmp_path / "root" / target
    assert installed.read_bytes() == cert.read_bytes()
    assert installed.stat().st_mode & 0o777 == 0o644
    assert log.read_text().splitlines()[0].rstrip().endswith(f"{fake} {refresh}".rstrip())

    removed = _run_linux(env, "--remove")
    assert removed.returncode == 0, removed.stderr
    assert not installed.exists()
    assert len(log.read_text().splitlines()) == 2


@pytest.mark.parametrize("case", ["key", "two-certs", "missing", "no-argument"])
def test_linux_install_script_refuses(tmp_path: Path, case: str) -> None:
    """The private key, a bundle or a missing file is refused and nothing is installed."""
    env, log = _toolbox(tmp_path, "update-ca-certificates")
    ensure_ca(tmp_path / "var")
    ca = ca_dir(tmp_path / "var")
    args = {
        "key": [str(ca / "mitmproxy-ca.pem")],
        "two-certs": [str(tmp_path / "two.pem")],
        "missing": [str(tmp_path / "nope.pem")],
        "no-argument": [],
    }[case]
    (tmp_path / "two.pem").write_bytes((ca / CA_CERT_NAME).read_bytes() * 2)
    result = _run_linux(env, *args)
    assert result.returncode != 0
    assert "install-ca-linux:" in result.stderr
    assert not (tmp_path / "root").exists()
    assert not log.exists()


# --- greenroom-env.sh --------------------------------------------------------------------------------

REPLACING = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO", "AWS_CA_BUNDLE")


def _source_env(tmp_path: Path, shell: str, extra: dict[str, str]) -> subprocess.CompletedProcess[str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path / "home"), **extra}
    return subprocess.run(
        [shell, "-c", f'. "{CA_DEPLOY / "greenroom-env.sh"}" && env'],
        env=env, capture_output=True, text=True, timeout=30, check=False,
    )


@pytest.mark.parametrize("shell", [s for s in ("sh", "bash") if shutil.which(s)])
def test_env_script_builds_a_combined_bundle(tmp_path: Path, shell: str) -> None:
    """SSL_CERT_FILE & co. REPLACE the store: they get system roots + Greenroom CA; Node gets the CA alone."""
    cert = ensure_ca(tmp_path / "var")
    roots = tmp_path / "roots.pem"
    _key, other_root, _ = _studio_ca("ec")
    roots.write_bytes(other_root)
    result = _source_env(tmp_path, shell, {
        "GREENROOM_CA": str(cert),
        "GREENROOM_SYSTEM_BUNDLE": str(roots),
        "GREENROOM_PROXY": "http://alice:alice-demo@gw.studio.internal:8080",
        "GREENROOM_NO_PROXY": ".studio.internal",
    })
    assert result.returncode == 0, result.stderr
    env = dict(line.split("=", 1) for line in result.stdout.splitlines() if "=" in line)
    bundle = Path(env["GREENROOM_BUNDLE"])
    assert bundle == tmp_path / "home" / ".config" / "greenroom" / "ca-bundle.pem"
    text = bundle.read_text()
    assert other_root.decode().strip() in text and cert.read_text().strip() in text
    for name in REPLACING:
        assert env[name] == str(bundle), name
    assert env["NODE_EXTRA_CA_CERTS"] == str(cert)
    assert env["HTTPS_PROXY"] == env["https_proxy"] == "http://alice:alice-demo@gw.studio.internal:8080"
    assert env["NO_PROXY"] == "localhost,127.0.0.1,::1,.studio.internal"


def test_env_script_refuses_the_private_key(tmp_path: Path) -> None:
    """Pointing GREENROOM_CA at the key file is refused: the key never leaves the gateway."""
    ensure_ca(tmp_path / "var")
    roots = tmp_path / "roots.pem"
    roots.write_text("")
    result = _source_env(tmp_path, "sh", {
        "GREENROOM_CA": str(ca_dir(tmp_path / "var") / "mitmproxy-ca.pem"),
        "GREENROOM_SYSTEM_BUNDLE": str(roots),
    })
    assert result.returncode != 0
    assert "private key" in result.stderr


@pytest.mark.parametrize("script", ["install-ca-linux.sh", "install-ca-macos.sh", "greenroom-env.sh"])
def test_shell_scripts_parse(script: str) -> None:
    """Every shell script is valid POSIX sh (the macOS one cannot run here)."""
    result = subprocess.run(["sh", "-n", str(CA_DEPLOY / script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
