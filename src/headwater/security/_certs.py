"""Development certificates: a private CA, a server certificate and client certificates.

They exist so TLS and mutual TLS can be tried and tested without an outside PKI. Keys are EC
P-256 (small, fast, accepted by OpenSSL, librdkafka and Java's PEM keystores) and written
unencrypted, so this is for development, never for production secrets.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEFAULT_HOSTS = ("localhost", "127.0.0.1")
# Backdating covers clocks a few minutes behind the machine that issued the certificate.
_BACKDATE = datetime.timedelta(minutes=5)
# Client names become file names next to ca.pem and server.pem, so they are kept plain.
_CLIENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_RESERVED_NAMES = frozenset({"ca", "server"})
_DNS_LABEL = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


class CertifiedKey(NamedTuple):
    """A private key and the certificate issued for it."""

    key: ec.EllipticCurvePrivateKey
    certificate: x509.Certificate

    def key_pem(self) -> bytes:
        """The key as unencrypted PKCS#8 PEM, the form OpenSSL, librdkafka and Java all read."""
        return self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def create_ca(
    common_name: str = "Headwater development CA",
    *,
    days: int = 365,
    not_valid_before: datetime.datetime | None = None,
) -> CertifiedKey:
    """A self-signed CA that may sign end-entity certificates only (path length 0)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    start, end = _validity(days, not_valid_before)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertifiedKey(key, certificate)


def create_server_certificate(
    ca: CertifiedKey,
    hosts: Sequence[str],
    *,
    days: int = 365,
    not_valid_before: datetime.datetime | None = None,
    common_name: str | None = None,
) -> CertifiedKey:
    """A serverAuth certificate whose subjectAltName lists every host (DNS name or IP)."""
    if not hosts:
        raise ValueError("a server certificate needs at least one host name or IP address")
    names = [_general_name(host) for host in hosts]
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name or hosts[0])])
    builder = _leaf(ca, subject, ExtendedKeyUsageOID.SERVER_AUTH, days, not_valid_before)
    return _sign(ca, builder.add_extension(x509.SubjectAlternativeName(names), critical=False))


def create_client_certificate(
    ca: CertifiedKey,
    common_name: str,
    *,
    days: int = 365,
    organizational_unit: str | None = None,
    organization: str | None = None,
    not_valid_before: datetime.datetime | None = None,
) -> CertifiedKey:
    """A clientAuth certificate; its subject is the principal a mutual-TLS broker sees."""
    # Most general first in the encoding, so the RFC 2253 form reads CN=...,OU=...,O=...
    attributes = [
        x509.NameAttribute(oid, value)
        for oid, value in (
            (NameOID.ORGANIZATION_NAME, organization),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, organizational_unit),
            (NameOID.COMMON_NAME, common_name),
        )
        if value is not None
    ]
    builder = _leaf(
        ca, x509.Name(attributes), ExtendedKeyUsageOID.CLIENT_AUTH, days, not_valid_before
    )
    return _sign(ca, builder)


class BundleExistsError(FileExistsError):
    """Some files ``write_bundle`` would write are already there; nothing was written."""

    def __init__(self, paths: list[Path]) -> None:
        listed = ", ".join(str(path) for path in paths)
        super().__init__(f"{listed} already exist; pass overwrite=True to replace them")
        self.paths = paths


@dataclass(frozen=True, slots=True)
class ClientFiles:
    """The files of one client: PEM certificate, PEM key, and both in one Java PEM keystore."""

    name: str
    certfile: Path
    keyfile: Path
    keystore: Path


@dataclass(frozen=True, slots=True)
class CertBundle:
    """Paths of the files ``write_bundle`` wrote."""

    directory: Path
    ca_certfile: Path
    ca_keyfile: Path
    server_certfile: Path
    server_keyfile: Path
    server_keystore: Path
    clients: tuple[ClientFiles, ...]

    def paths(self) -> list[Path]:
        out = [
            self.ca_certfile,
            self.ca_keyfile,
            self.server_certfile,
            self.server_keyfile,
            self.server_keystore,
        ]
        for client in self.clients:
            out += [client.certfile, client.keyfile, client.keystore]
        return out


def write_bundle(
    out_dir: Path,
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    clients: Iterable[str] = (),
    days: int = 365,
    overwrite: bool = False,
) -> CertBundle:
    """Issue a CA, a server certificate and client certificates, and write them as PEM files.

    Every path is checked before anything is written, so a refusal leaves the folder as it
    was. Each file is written to a temporary name and renamed into place, so a broker that
    reloads server.pem never reads a half-written file.
    """
    names = _client_names(clients)
    out_dir = Path(out_dir)
    bundle = _bundle_paths(out_dir, names)
    if not overwrite:
        existing = [path for path in bundle.paths() if path.exists()]
        if existing:
            raise BundleExistsError(existing)
    ca = create_ca(days=days)
    server = create_server_certificate(ca, hosts, days=days)
    issued = [
        (files, create_client_certificate(ca, files.name, days=days)) for files in bundle.clients
    ]
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(bundle.ca_certfile, ca.certificate_pem(), secret=False)
    _write(bundle.ca_keyfile, ca.key_pem(), secret=True)
    _write_pair(server, bundle.server_certfile, bundle.server_keyfile, bundle.server_keystore)
    for files, client in issued:
        _write_pair(client, files.certfile, files.keyfile, files.keystore)
    return bundle


def _validity(
    days: int, not_valid_before: datetime.datetime | None
) -> tuple[datetime.datetime, datetime.datetime]:
    if days < 1:
        raise ValueError(f"days={days}: a certificate must be valid for at least 1 day")
    start = not_valid_before or datetime.datetime.now(datetime.UTC) - _BACKDATE
    return start, start + datetime.timedelta(days=days)


def _general_name(host: str) -> x509.GeneralName:
    host = host.strip().removeprefix("[").removesuffix("]")
    if not host:
        raise ValueError("empty host name: give a DNS name such as localhost or an IP address")
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        pass
    try:
        ascii_host = host.encode("idna").decode("ascii")
    except UnicodeError:
        ascii_host = ""
    labels = ascii_host.removeprefix("*.").split(".")
    if len(ascii_host) > 253 or not all(_DNS_LABEL.fullmatch(label) for label in labels):
        raise ValueError(f"host {host!r} is neither an IP address nor a DNS name")
    return x509.DNSName(ascii_host)


def _leaf(
    ca: CertifiedKey,
    subject: x509.Name,
    usage: x509.ObjectIdentifier,
    days: int,
    not_valid_before: datetime.datetime | None,
) -> x509.CertificateBuilder:
    start, end = _validity(days, not_valid_before)
    ca_key_id = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca.certificate.subject)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_key_id.value),
            critical=False,
        )
    )


def _sign(ca: CertifiedKey, builder: x509.CertificateBuilder) -> CertifiedKey:
    key = ec.generate_private_key(ec.SECP256R1())
    certificate = (
        builder.public_key(key.public_key())
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return CertifiedKey(key, certificate)


def _client_names(clients: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for name in clients:
        if not _CLIENT_NAME.fullmatch(name):
            raise ValueError(
                f"client name {name!r}: use letters, digits, '.', '_' or '-' (it names the files)"
            )
        if name.lower() in _RESERVED_NAMES:
            raise ValueError(f"client name {name!r} would overwrite the {name.lower()} files")
        if name in seen:
            raise ValueError(f"client name {name!r} is given twice")
        seen.add(name)
        out.append(name)
    return out


def _bundle_paths(out_dir: Path, names: list[str]) -> CertBundle:
    return CertBundle(
        directory=out_dir,
        ca_certfile=out_dir / "ca.pem",
        ca_keyfile=out_dir / "ca.key",
        server_certfile=out_dir / "server.pem",
        server_keyfile=out_dir / "server.key",
        server_keystore=out_dir / "server.keystore.pem",
        clients=tuple(
            ClientFiles(
                name,
                out_dir / f"{name}.pem",
                out_dir / f"{name}.key",
                out_dir / f"{name}.keystore.pem",
            )
            for name in names
        ),
    )


def _write_pair(issued: CertifiedKey, certfile: Path, keyfile: Path, keystore: Path) -> None:
    _write(certfile, issued.certificate_pem(), secret=False)
    _write(keyfile, issued.key_pem(), secret=True)
    # Java's PEM keystore (ssl.keystore.type=PEM) wants the PKCS#8 key, then the chain.
    _write(keystore, issued.key_pem() + issued.certificate_pem(), secret=True)


def _write(path: Path, data: bytes, *, secret: bool) -> None:
    mode = 0o600 if secret else 0o644
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            os.fchmod(file.fileno(), mode)
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
