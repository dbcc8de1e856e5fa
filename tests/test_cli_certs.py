"""``headwater certs create``: the files it writes, their modes and names, and its refusals."""

from __future__ import annotations

import ipaddress
import os
import ssl
import stat
import subprocess
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from typer.testing import CliRunner

from headwater.cli._app import app

runner = CliRunner()


def certs(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["certs", "create", *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def test_writes_ca_server_and_clients(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    code, output = certs(
        "--out", str(out), "--host", "broker.local", "--host", "10.0.0.7", "--client", "alice"
    )
    assert code == 0, output
    names = {
        "ca.pem",
        "ca.key",
        "server.pem",
        "server.key",
        "server.keystore.pem",
        "alice.pem",
        "alice.key",
        "alice.keystore.pem",
    }
    assert {path.name for path in out.iterdir()} == names
    for name in names:
        mode = stat.S_IMODE((out / name).stat().st_mode)
        secret = name.endswith(".key") or name.endswith(".keystore.pem")
        assert mode == (0o600 if secret else 0o644), (name, oct(mode))
        assert f"wrote {out / name}" in output

    server = load(out / "server.pem")
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["broker.local"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("10.0.0.7")]
    usage = server.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.SERVER_AUTH]
    alice = load(out / "alice.pem")
    assert alice.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    usage = alice.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(usage) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    ca = load(out / "ca.pem")
    for leaf in (server, alice):
        leaf.verify_directly_issued_by(ca)
        days = (leaf.not_valid_after_utc - leaf.not_valid_before_utc).days
        assert days == 365

    # A Java PEM keystore is the PKCS#8 key, then the certificate; OpenSSL reads it as both.
    keystore = (out / "alice.keystore.pem").read_bytes()
    assert keystore.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert keystore.index(b"BEGIN CERTIFICATE") > keystore.index(b"END PRIVATE KEY")
    assert serialization.load_pem_private_key(keystore, None) is not None
    ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT).load_cert_chain(out / "alice.keystore.pem")

    for setting in (
        f'ssl_certfile = "{(out / "server.pem").resolve()}"',
        f'ssl_keyfile = "{(out / "server.key").resolve()}"',
        f'ssl_cafile = "{(out / "ca.pem").resolve()}"',
        'ssl_client_auth = "required"',
        "security.protocol=SSL",
        f"ssl.ca.location={(out / 'ca.pem').resolve()}",
        f"ssl.certificate.location={(out / 'alice.pem').resolve()}",
        f"ssl.key.location={(out / 'alice.key').resolve()}",
        "ssl.truststore.type=PEM",
        f"ssl.keystore.location={(out / 'alice.keystore.pem').resolve()}",
    ):
        assert setting in output, setting


def test_defaults_localhost_and_loopback(tmp_path: Path) -> None:
    code, output = certs("--out", str(tmp_path / "pki"), "--days", "30")
    assert code == 0, output
    server = load(tmp_path / "pki" / "server.pem")
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["localhost"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
    assert (server.not_valid_after_utc - server.not_valid_before_utc).days == 30


def test_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "pki"
    assert certs("--out", str(out))[0] == 0
    before = (out / "ca.pem").read_bytes()
    code, output = certs("--out", str(out), "--client", "bob")
    assert code == 1
    assert "ca.pem" in output and "--force" in output and "Traceback" not in output
    assert (out / "ca.pem").read_bytes() == before
    assert not (out / "bob.pem").exists()  # nothing is written when anything is refused
    code, output = certs("--out", str(out), "--client", "bob", "--force")
    assert code == 0, output
    assert (out / "ca.pem").read_bytes() != before and (out / "bob.pem").is_file()


def test_bad_input_and_unwritable_folder_fail_cleanly(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, output = certs("--out", str(blocker / "pki"))
    assert code == 1 and "cannot write certificates" in output and "Traceback" not in output
    code, output = certs("--out", str(tmp_path / "a"), "--host", "bad host!")
    assert code == 1 and "'bad host!'" in output
    code, output = certs("--out", str(tmp_path / "b"), "--client", "../escape")
    assert code == 1 and "client name" in output
    code, output = certs("--out", str(tmp_path / "c"), "--client", "server")
    assert code == 1 and "overwrite the server files" in output
    assert not any((tmp_path / name).exists() for name in "abc")


def test_help_describes_every_option() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "headwater", "certs", "create", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    text = " ".join(result.stdout.split())
    for option, words in {
        "--out": "Folder to write the PEM files to",
        "--host": "DNS name or IP address",
        "--client": "client certificate",
        "--days": "Days the certificates stay valid",
        "--force": "Overwrite",
    }.items():
        assert option in text and words in text, option
    assert "localhost and 127.0.0.1" in text and "headwater-certs" in text
    listed = subprocess.run(
        [sys.executable, "-m", "headwater", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
        env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"},
    )
    assert "certs" in listed.stdout
