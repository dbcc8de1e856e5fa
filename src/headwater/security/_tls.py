"""Server-side TLS: the broker's SSL context, certificate reloading, and client principals.

How the broker attaches it: build one ``ServerTls`` per broker, pass ``tls.context()`` once as
``ssl=`` to ``asyncio.start_server`` for every SSL and SASL_SSL listener, and call
``tls.refresh()`` about once a second from a task in the broker's TaskGroup (it is cheap: a
few ``stat`` calls, rate-limited by the injected clock). A renewed certificate is loaded into
that *same* context object. Both asyncio's and uvloop's transports create their SSL object
from the context when a connection is accepted, so the new certificate serves every handshake
that starts after the reload while open connections keep theirs (tests/test_security_tls.py
checks this on both loops). Reload from the event-loop thread only: OpenSSL contexts are not
safe to change while another thread starts a handshake from them.

OpenSSL's trust store only grows, so a CA certificate removed from ``cafile`` stays trusted
until the broker restarts; a reload that drops one says so in the log.
"""

from __future__ import annotations

import logging
import os
import re
import ssl
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from headwater.security._errors import SecurityError

logger = logging.getLogger(__name__)

CLIENT_AUTH_MODES = ("none", "requested", "required")
_VERIFY_MODES = {
    "none": ssl.CERT_NONE,
    "requested": ssl.CERT_OPTIONAL,
    "required": ssl.CERT_REQUIRED,
}
RELOAD_CHECK_INTERVAL_S = 1.0

# (mtime_ns, size) of certfile, keyfile and cafile; None for a file that could not be stat'ed.
_Signature = tuple[tuple[int, int] | None, ...]


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """The PEM files and client-certificate policy of a TLS listener."""

    certfile: Path
    keyfile: Path
    cafile: Path | None = None
    key_password: str | None = field(default=None, repr=False)
    client_auth: str = "none"

    def validate(self) -> None:
        """Raise ValueError naming the setting that is wrong and what to do about it."""
        if self.client_auth not in CLIENT_AUTH_MODES:
            raise ValueError(
                f"ssl_client_auth={self.client_auth!r} is not a mode: choose one of "
                + ", ".join(CLIENT_AUTH_MODES)
            )
        if self.client_auth != "none" and self.cafile is None:
            raise ValueError(
                f"ssl_client_auth={self.client_auth} needs ssl_cafile: the PEM CA certificates "
                "client certificates must chain to (headwater certs create writes ca.pem)"
            )
        for name, path in (
            ("ssl_certfile", self.certfile),
            ("ssl_keyfile", self.keyfile),
            ("ssl_cafile", self.cafile),
        ):
            if path is not None and not Path(path).is_file():
                raise ValueError(
                    f"{name}={path}: no such file; point it at a PEM file "
                    "(headwater certs create writes development certificates)"
                )


@dataclass(frozen=True, slots=True)
class _Material:
    cert_pem: bytes
    key_pem: bytes
    ca_pem: str | None


class ServerTls:
    """Owns the broker's server-side SSLContext and reloads renewed certificates into it.

    The context object never changes, because ``asyncio.start_server`` takes exactly one;
    reloading calls ``load_cert_chain`` on it again, which affects every later handshake.
    Files are read once per reload into a private copy and loaded into a scratch context
    first, so a half-written or mismatched file can never leave the live context broken.
    """

    def __init__(
        self,
        settings: TlsSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        check_interval_s: float = RELOAD_CHECK_INTERVAL_S,
    ) -> None:
        settings.validate()
        self._settings = settings
        self._clock = clock
        self._check_interval_s = check_interval_s
        self._context = self._new_context()
        signature = self._signature()
        try:
            self._load(self._context, self._read())
        except (OSError, ValueError, ssl.SSLError) as exc:
            raise ValueError(self._explain(exc)) from exc
        self._loaded: _Signature = signature
        self._failed: _Signature | None = None
        self._checked_at = clock()

    @property
    def settings(self) -> TlsSettings:
        return self._settings

    def context(self) -> ssl.SSLContext:
        """The live context, with any renewed certificate loaded into it first."""
        self.refresh()
        return self._context

    def refresh(self) -> bool:
        """Reload the files if they changed since the last load; True when a reload happened.

        Checks at most once per ``check_interval_s``. A reload that fails keeps the previous
        certificate and is logged once per version of the files, not once per check.
        """
        now = self._clock()
        if now - self._checked_at < self._check_interval_s:
            return False
        self._checked_at = now
        signature = self._signature()
        if signature in (self._loaded, self._failed):
            return False
        try:
            material = self._read()
            scratch = self._new_context()
            self._load(scratch, material)
            self._warn_dropped_cas(scratch)
            self._load(self._context, material)
        except (OSError, ValueError, ssl.SSLError) as exc:
            self._failed = signature
            logger.warning(
                "tls reload failed, still serving the previous certificate certfile=%s reason=%s",
                self._settings.certfile,
                self._explain(exc),
            )
            return False
        self._loaded = signature
        self._failed = None
        logger.info("tls certificate reloaded certfile=%s", self._settings.certfile)
        return True

    def _new_context(self) -> ssl.SSLContext:
        # PROTOCOL_TLS_SERVER is ssl.Purpose.CLIENT_AUTH's protocol; building it by hand
        # rather than with create_default_context keeps the system roots out of the trust
        # store, so only ssl_cafile can vouch for a client.
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.verify_mode = _VERIFY_MODES[self._settings.client_auth]
        return context

    def _paths(self) -> tuple[Path, ...]:
        settings = self._settings
        extra = () if settings.cafile is None else (Path(settings.cafile),)
        return (Path(settings.certfile), Path(settings.keyfile), *extra)

    def _signature(self) -> _Signature:
        out: list[tuple[int, int] | None] = []
        for path in self._paths():
            try:
                stat = path.stat()
            except OSError:
                out.append(None)
            else:
                out.append((stat.st_mtime_ns, stat.st_size))
        return tuple(out)

    def _read(self) -> _Material:
        settings = self._settings
        ca_pem = None
        if settings.cafile is not None:
            try:
                ca_pem = Path(settings.cafile).read_bytes().decode("ascii")
            except UnicodeDecodeError as exc:
                raise ValueError(f"ssl_cafile={settings.cafile} is not PEM text") from exc
        return _Material(
            Path(settings.certfile).read_bytes(), Path(settings.keyfile).read_bytes(), ca_pem
        )

    def _load(self, context: ssl.SSLContext, material: _Material) -> None:
        # load_cert_chain only takes paths: load from one private copy, so the scratch and
        # the live context get the same bytes even if the files change in between.
        with tempfile.TemporaryDirectory(prefix="headwater-tls-") as tmp:
            certfile, keyfile = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            certfile.write_bytes(material.cert_pem)
            fd = os.open(keyfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as file:
                file.write(material.key_pem)
            context.load_cert_chain(certfile, keyfile, password=self._password)
        if material.ca_pem is not None:
            context.load_verify_locations(cadata=material.ca_pem)

    def _password(self) -> str:
        # Without a callback OpenSSL would prompt on the terminal and block the broker.
        if self._settings.key_password is None:
            raise ValueError("the private key is encrypted: set ssl_key_password")
        return self._settings.key_password

    def _warn_dropped_cas(self, scratch: ssl.SSLContext) -> None:
        kept = set(scratch.get_ca_certs(binary_form=True))
        dropped = [der for der in self._context.get_ca_certs(binary_form=True) if der not in kept]
        if dropped:
            logger.warning(
                "tls ssl_cafile no longer lists %d CA certificate(s); they stay trusted until "
                "the broker restarts cafile=%s",
                len(dropped),
                self._settings.cafile,
            )

    def _explain(self, exc: BaseException) -> str:
        settings = self._settings
        reason = exc.reason if isinstance(exc, ssl.SSLError) and exc.reason else str(exc)
        return (
            f"cannot load TLS certificate ssl_certfile={settings.certfile} with "
            f"ssl_keyfile={settings.keyfile}"
            + ("" if settings.cafile is None else f" and ssl_cafile={settings.cafile}")
            + f": {reason}; check that they are PEM files, that the key belongs to the "
            "certificate, and that ssl_key_password is set if the key is encrypted"
        )


# -- principals -------------------------------------------------------------------------------

# The attribute keywords Java's X500Principal.getName() (RFC 2253) prints; others print as
# dotted OIDs with the DER value in hex.
_RFC2253_KEYWORDS = {
    NameOID.COMMON_NAME: "CN",
    NameOID.COUNTRY_NAME: "C",
    NameOID.LOCALITY_NAME: "L",
    NameOID.STATE_OR_PROVINCE_NAME: "ST",
    NameOID.ORGANIZATION_NAME: "O",
    NameOID.ORGANIZATIONAL_UNIT_NAME: "OU",
    NameOID.STREET_ADDRESS: "STREET",
    NameOID.DOMAIN_COMPONENT: "DC",
    NameOID.USER_ID: "UID",
}
# DER tags of the string types Java prints as text: UTF8, Printable, T61, IA5, General, BMP.
_STRING_TAGS = frozenset({0x0C, 0x13, 0x14, 0x16, 0x1B, 0x1E})
# Java escapes '=' and '#' anywhere, beyond RFC 2253's required set.
_ESCAPED = frozenset(',=+<>#;"\\')


def peer_principal(
    ssl_object: ssl.SSLObject | ssl.SSLSocket | None,
    mapper: Callable[[str], str] | None = None,
) -> str | None:
    """The client certificate's subject as Kafka names it, mapped; None without a certificate.

    Kafka takes ``X500Principal.getName()`` (RFC 2253, most specific RDN first) and applies
    ``ssl.principal.mapping.rules``; a mapper that finds no rule raises, which Kafka treats as
    a failed authentication.
    """
    if ssl_object is None:
        return None
    der = ssl_object.getpeercert(binary_form=True)
    if not der:
        return None
    dn = distinguished_name(x509.load_der_x509_certificate(der).subject)
    return dn if mapper is None else mapper(dn)


def distinguished_name(name: x509.Name) -> str:
    """``name`` printed as Java's ``X500Principal.getName()`` prints it (RFC 2253)."""
    # RFC 2253 reverses the encoded order, so the most specific RDN (CN) comes first.
    return ",".join(
        "+".join(_attribute_string(attribute) for attribute in rdn) for rdn in reversed(name.rdns)
    )


def _attribute_string(attribute: x509.NameAttribute[str | bytes]) -> str:
    value_der = _value_der(attribute)
    keyword = _RFC2253_KEYWORDS.get(attribute.oid)
    if keyword is None or value_der[0] not in _STRING_TAGS or not isinstance(attribute.value, str):
        return f"{keyword or attribute.oid.dotted_string}=#{value_der.hex()}"
    return f"{keyword}={_escape(attribute.value)}"


def _escape(value: str) -> str:
    text = "".join(
        "\\" + char if char in _ESCAPED else "\\00" if char == "\0" else char for char in value
    )
    lead = len(text) - len(text.lstrip(" \r"))
    trail = len(text.rstrip(" \r"))
    return "".join(
        "\\" + char if index < lead or index >= trail else char for index, char in enumerate(text)
    )


def _value_der(attribute: x509.NameAttribute[str | bytes]) -> bytes:
    """The DER of the attribute's value, from a one-attribute Name (SEQ > SET > SEQ > OID)."""
    der = x509.Name([x509.RelativeDistinguishedName([attribute])]).public_bytes()
    offset = 0
    for _ in range(3):
        offset, _length = _header(der, offset)
    oid_start, oid_length = _header(der, offset)
    # The value is the last element of all three enclosing structures, so it runs to the end.
    return der[oid_start + oid_length :]


def _header(der: bytes, offset: int) -> tuple[int, int]:
    """Where the DER element at ``offset`` has its content, and how long that is."""
    first = der[offset + 1]
    if first < 0x80:
        return offset + 2, first
    size = first & 0x7F
    return offset + 2 + size, int.from_bytes(der[offset + 2 : offset + 2 + size], "big")


# -- ssl.principal.mapping.rules ---------------------------------------------------------------

# Kafka's SslPrincipalMapper grammar, kept verbatim so rules split and fail exactly as there:
# a pattern or replacement may hold commas and escaped slashes ("\/").
_RULE = r"(DEFAULT)|RULE:((\\.|[^\\/])*)/((\\.|[^\\/])*)/([LU]?).*?|(.*?)"
_RULE_SPLITTER = re.compile(r"\s*(" + _RULE + r")\s*(,\s*|$)")
_RULE_PARSER = re.compile(_RULE)
# Java writes named groups (?<name>...); Python wants (?P<name>...).
_JAVA_NAMED_GROUP = re.compile(r"(?<!\\)\(\?<([A-Za-z][A-Za-z0-9]*)>")
_DIGITS = "0123456789"


class NoMatchingRuleError(SecurityError, ValueError):
    """No ssl.principal.mapping.rules rule matched a certificate's DN (Kafka: NoMatchingRule)."""


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str] | None  # None is DEFAULT
    source: str = ""  # the pattern as written, in Java's syntax
    replacement: str = ""
    parts: tuple[str | int, ...] = ()  # literal text, or a group number
    case: str = ""

    def apply(self, dn: str) -> str | None:
        if self.pattern is None:
            return dn
        if self.pattern.fullmatch(dn) is None:
            return None
        # Kafka calls replaceAll after the whole-string match, so an unanchored pattern can
        # match again at the end of the DN; re.sub does the same.
        result = self.pattern.sub(self._expand, dn)
        if self.case == "L":
            return result.lower()
        return result.upper() if self.case == "U" else result

    def _expand(self, match: re.Match[str]) -> str:
        return "".join(
            part if isinstance(part, str) else match.group(part) or "" for part in self.parts
        )

    def __str__(self) -> str:
        if self.pattern is None:
            return "DEFAULT"
        case = f"/{self.case}" if self.case else ""
        return f"RULE:{self.source}/{self.replacement}{case}"


class PrincipalMapper:
    """Kafka's ``ssl.principal.mapping.rules``: turns a certificate DN into a principal name.

    Rules are ``RULE:pattern/replacement/[LU]`` or ``DEFAULT``, separated by commas, tried in
    order; the first whose pattern matches the whole DN wins. Patterns are Java regexes run
    by Python's ``re`` in ASCII mode (as Java's ``\\w``, ``\\d`` and ``(?i)`` are), and
    replacements use Java's ``$1``/``${name}`` references, where a reference past the last
    group is literal text, as in Kafka.
    """

    def __init__(self, rules: str = "DEFAULT") -> None:
        parsed = (_parse_rule(rule) for rule in _split_rules(rules))
        self._rules = tuple(rule for rule in parsed if rule is not None)

    @property
    def rules(self) -> tuple[str, ...]:
        """The parsed rules, written as Kafka's SslPrincipalMapper prints them."""
        return tuple(str(rule) for rule in self._rules)

    def map(self, dn: str) -> str:
        for rule in self._rules:
            name = rule.apply(dn)
            if name is not None:
                return name
        raise NoMatchingRuleError(
            f"no ssl.principal.mapping.rules rule applies to {dn!r} (rules: "
            + ", ".join(self.rules)
            + "); add one that matches or end the rules with DEFAULT"
        )

    __call__ = map

    def __repr__(self) -> str:
        return f"PrincipalMapper(rules={list(self.rules)!r})"


def _split_rules(rules: str) -> list[str]:
    return [match.group(1) for match in _RULE_SPLITTER.finditer(rules.strip())]


def _parse_rule(rule: str) -> _Rule | None:
    match = _RULE_PARSER.match(rule)
    assert match is not None  # the last alternative matches the empty string
    if match.end() != len(rule):
        raise ValueError(
            f"invalid ssl.principal.mapping.rules rule {rule!r}: unmatched {rule[match.end() :]!r}"
            "; write RULE:pattern/replacement/ with an optional L or U after the last '/', "
            "or DEFAULT"
        )
    if match.group(1) is not None:
        return _Rule(None)
    if match.group(2) is None:
        return None  # an empty rule, ignored as Kafka does
    source, replacement, case = match.group(2), match.group(4), match.group(6)
    try:
        with warnings.catch_warnings():
            # Java-only syntax such as [[:alpha:]] makes re warn; it fails below or matches.
            warnings.simplefilter("ignore", FutureWarning)
            pattern = re.compile(_JAVA_NAMED_GROUP.sub(r"(?P<\1>", source), re.ASCII)
    except re.error as exc:
        raise ValueError(
            f"invalid ssl.principal.mapping.rules rule {rule!r}: pattern {source!r}: {exc}"
        ) from exc
    parts = _parse_replacement(replacement, pattern, rule)
    return _Rule(pattern, source, replacement, parts, case)


def _parse_replacement(text: str, pattern: re.Pattern[str], rule: str) -> tuple[str | int, ...]:
    """Java's Matcher.appendReplacement syntax, with Kafka's literal out-of-range references."""

    def invalid(why: str) -> ValueError:
        return ValueError(f"invalid ssl.principal.mapping.rules rule {rule!r}: {why}")

    parts: list[str | int] = []
    literal: list[str] = []
    index = 0
    while index < len(text):
        char = text[index]
        index += 1
        if char == "\\":
            if index == len(text):
                raise invalid("the replacement ends with a lone backslash")
            literal.append(text[index])
            index += 1
            continue
        if char != "$":
            literal.append(char)
            continue
        if text.startswith("{", index):
            end = text.find("}", index)
            name = text[index + 1 : end]
            if end < 0 or name not in pattern.groupindex:
                raise invalid(f"the replacement refers to an unknown group ${{{name}}}")
            ref, index = pattern.groupindex[name], end + 1
        elif index < len(text) and text[index] in _DIGITS:
            ref = int(text[index])
            index += 1
            if ref > pattern.groups:
                if pattern.groups == 0:
                    raise invalid(f"the replacement uses ${ref} but the pattern has no groups")
                literal.append("$")  # Kafka escapes references past the last group
                index -= 1
                continue
            # Further digits belong to the reference while it still names a group (Java).
            while index < len(text) and text[index] in _DIGITS:
                longer = ref * 10 + int(text[index])
                if longer > pattern.groups:
                    break
                ref, index = longer, index + 1
        else:
            raise invalid("'$' in the replacement must be followed by a group number or {name}")
        if literal:
            parts.append("".join(literal))
            literal = []
        parts.append(ref)
    if literal:
        parts.append("".join(literal))
    return tuple(parts)
