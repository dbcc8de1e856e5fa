"""A minimal blocking Kafka connection: one request, one response, versions negotiated.

confluent-kafka's AdminClient has no call for ListTransactions, DescribeTransactions or
DescribeProducers, so the transactions admin speaks those APIs itself. kio does the byte-level
work and ``to_entity`` builds requests from plain dicts, so callers write one shape for every
version. It takes the client security profile (``HEADWATER_CLIENT_CONFIG``): TLS when
``security.protocol`` is SSL or SASL_SSL, then a SASL login (PLAIN, SCRAM-SHA-256/512).
"""

from __future__ import annotations

import dataclasses
import functools
import io
import socket
import ssl
import struct
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any, cast

from kio.index import KioIndexError, load_request_schema, load_response_schema
from kio.schema.errors import ErrorCode
from kio.schema.request_header.v1.header import RequestHeader as RequestHeaderV1
from kio.schema.request_header.v2.header import RequestHeader as RequestHeaderV2
from kio.schema.response_header.v1.header import ResponseHeader as ResponseHeaderV1
from kio.serial import entity_reader, entity_writer
from kio.serial._introspect import EntityTupleField, classify_field
from kio.static.primitive import TZAware
from kio.static.protocol import Entity

from headwater import __version__
from headwater.client._admin import AdminError
from headwater.client._security import client_security
from headwater.protocol._codec import to_entity
from headwater.security._errors import AuthenticationFailed
from headwater.security._scram_client import ScramClient

API_VERSIONS = 18
DESCRIBE_TRANSACTIONS = 65
UNSUPPORTED_VERSION = 35
# The highest version of each API this client speaks; negotiation takes min(ours, broker's).
CLIENT_MAX_VERSIONS = {
    3: 12,  # Metadata
    10: 4,  # FindCoordinator
    17: 1,  # SaslHandshake
    18: 3,  # ApiVersions
    36: 2,  # SaslAuthenticate
    48: 1,  # DescribeClientQuotas
    49: 1,  # AlterClientQuotas
    61: 0,  # DescribeProducers
    65: 0,  # DescribeTransactions
    66: 1,  # ListTransactions
}
# Admin answers are small; a bigger size prefix means we are not talking to a Kafka broker.
RESPONSE_BYTES_MAX = 64 * 1024 * 1024
CONNECT_TIMEOUT_S = 10.0
_SIZE = struct.Struct(">i")
_SCHEMA_CLASS_VARS = ("__type__", "__version__", "__flexible__", "__api_key__", "__header_schema__")


class WireError(AdminError):
    """The connection failed, or the broker answered something this client cannot use."""


class UnsupportedApiError(WireError):
    """The broker does not speak an API, or no version of it this client knows."""


def error_name(code: int) -> str:
    """A Kafka error code as operators see it in Kafka's own tools: ``NOT_COORDINATOR (16)``."""
    try:
        return f"{ErrorCode(code).name.upper()} ({int(code)})"
    except ValueError:
        return f"error code {int(code)}"


def is_retriable(code: int) -> bool:
    try:
        return bool(ErrorCode(code).retriable)
    except ValueError:
        return False


def api_name(api_key: int) -> str:
    """``ListTransactions`` for 66: kio names each request type after its API."""
    try:
        return load_request_schema(api_key, 0).__name__.removesuffix("Request")
    except KioIndexError:
        return f"api key {api_key}"


def split_address(address: str) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) into its parts, with an error that shows the format."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not host or not port.isdigit():
        raise WireError(f"bad broker address {address!r}: write it as host:port")
    return host.strip("[]"), int(port)


@functools.cache
def response_schema(api_key: int, version: int) -> type[Entity]:
    """kio's response type, except where kio cannot read what Kafka sends.

    DescribeTransactions: Kafka answers -1 as the start time of a transaction that is not open
    (and of an unknown id), and kio refuses negative timestamps; reading that field as
    nullable turns -1 into None and leaves every other byte to kio.
    """
    response_type = load_response_schema(api_key, version)
    if api_key != DESCRIBE_TRANSACTIONS:
        return response_type
    state_type = _entity_of(response_type, "transaction_states")
    state = _retyped(state_type, {"transaction_start_time": TZAware | None})
    return _retyped(response_type, {"transaction_states": tuple[state, ...]})  # type: ignore[valid-type]


def _entity_of(entity_type: type[Entity], name: str) -> type[Entity]:
    [field] = [f for f in dataclasses.fields(entity_type) if f.name == name]
    kind = classify_field(field)
    assert isinstance(kind, EntityTupleField), f"{name} is not an array of entities"
    return kind.type_


def _retyped(entity_type: type[Entity], types: Mapping[str, Any]) -> type[Entity]:
    """A copy of a kio schema class with some field types replaced; metadata kept."""
    fields = [
        (
            f.name,
            types.get(f.name, f.type),
            dataclasses.field(
                metadata=f.metadata, default=f.default, default_factory=f.default_factory
            ),
        )
        for f in dataclasses.fields(entity_type)
    ]
    namespace = {name: getattr(entity_type, name) for name in _SCHEMA_CLASS_VARS}
    made = dataclasses.make_dataclass(
        entity_type.__name__, fields, namespace=namespace, frozen=True, slots=True, kw_only=True
    )
    return cast(type[Entity], made)


@functools.cache
def _reader(entity_type: type[Entity]) -> Callable[[memoryview, int], tuple[Any, int]]:
    return entity_reader(entity_type)


@functools.cache
def _writer(entity_type: type[Entity]) -> Callable[[io.BytesIO, Any], None]:
    return entity_writer(entity_type)


class Connection:
    """One connection to one broker (TLS and SASL as the client profile says), after
    ApiVersions told us what it speaks.

    Requests go one at a time, so a response always answers the request just sent; the
    correlation id is still checked, because a mismatch means the stream is out of step.
    """

    def __init__(
        self, sock: socket.socket, address: str, client_id: str, role: str = "broker at"
    ) -> None:
        self._sock = sock
        self.address = address
        self.name = f"{role} {address}"  # "broker at host:port" or "bootstrap server host:port"
        self._client_id = client_id
        self._correlation_id = 0
        self.broker_versions: dict[int, tuple[int, int]] = {}
        self.api_versions_version = -1

    @classmethod
    def open(
        cls,
        address: str,
        *,
        timeout_s: float = CONNECT_TIMEOUT_S,
        client_id: str = "headwater-admin",
        role: str = "broker at",
        api_versions_version: int = CLIENT_MAX_VERSIONS[API_VERSIONS],
    ) -> Connection:
        """Connect and negotiate versions; ``api_versions_version`` is the first one tried."""
        host, port = split_address(address)
        try:
            sock = socket.create_connection((host, port), timeout=timeout_s)
        except OSError as exc:
            raise WireError(
                f"cannot reach the {role} {address} ({_reason(exc)}): "
                "is the broker running and is the address right?"
            ) from None
        settings = client_security()
        protocol = settings.get("security.protocol", "PLAINTEXT").upper()
        try:
            if protocol in ("SSL", "SASL_SSL"):
                sock = _tls(sock, host, settings, role, address)
        except BaseException:
            sock.close()
            raise
        conn = cls(sock, address, client_id, role)
        try:
            conn._negotiate(api_versions_version)
            if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
                conn._login(settings)
        except BaseException:
            conn.close()
            raise
        return conn

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    @property
    def closed(self) -> bool:
        return self._sock.fileno() == -1

    def version(self, api_key: int) -> int:
        """The version both sides speak: min(ours, the broker's), or UnsupportedApiError."""
        ours = CLIENT_MAX_VERSIONS.get(api_key)
        theirs = self.broker_versions.get(api_key)
        if ours is None:
            raise UnsupportedApiError(f"this client does not speak {api_name(api_key)}")
        if theirs is None:
            raise UnsupportedApiError(
                f"the {self.name} does not support {api_name(api_key)} "
                f"(api key {api_key}); it needs a Kafka version that has this API"
            )
        low, high = theirs
        chosen = min(ours, high)
        if chosen < low:
            raise UnsupportedApiError(
                f"the {self.name} speaks {api_name(api_key)} v{low}-{high}, "
                f"this client only v0-{ours}"
            )
        return chosen

    def call(self, api_key: int, body: Mapping[str, Any], version: int | None = None) -> Any:
        """Send one request (at the negotiated version unless given) and decode its response."""
        chosen = self.version(api_key) if version is None else version
        frame = self._roundtrip(api_key, chosen, body)
        return self._decode(api_key, chosen, frame)

    def _negotiate(self, first_version: int) -> None:
        """ApiVersions: try ``first_version``; a broker that does not know it answers with a v0
        body and UNSUPPORTED_VERSION, and every broker speaks v0."""
        body = {"client_software_name": "headwater", "client_software_version": __version__}
        version = first_version
        frame = self._roundtrip(API_VERSIONS, version, body)
        if version > 0 and _error_code_at(frame, 4) == UNSUPPORTED_VERSION:
            version = 0
            frame = self._roundtrip(API_VERSIONS, version, body)
        response = self._decode(API_VERSIONS, version, frame)
        if response.error_code != 0:
            raise WireError(
                f"the {self.name} refused ApiVersions: {error_name(response.error_code)}"
            )
        self.api_versions_version = version
        self.broker_versions = {
            int(k.api_key): (int(k.min_version), int(k.max_version)) for k in response.api_keys
        }

    def _login(self, settings: Mapping[str, str]) -> None:
        """SaslHandshake, then SaslAuthenticate until the mechanism is done."""
        mechanism = settings.get("sasl.mechanism", settings.get("sasl.mechanisms", "GSSAPI"))
        mechanism = mechanism.upper()
        user, password = settings.get("sasl.username", ""), settings.get("sasl.password", "")
        scram: ScramClient | None = None
        if mechanism == "PLAIN":
            tokens = [f"\0{user}\0{password}".encode()]
        elif mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            scram = ScramClient(mechanism, user, password)
            tokens = [scram.first()]
        else:
            raise WireError(f"sasl.mechanism={mechanism}: this tool logs in with PLAIN or SCRAM")
        handshake = self.call(17, {"mechanism": mechanism})
        if handshake.error_code != 0:
            raise WireError(
                f"the {self.name} refused SASL mechanism {mechanism} "
                f"({error_name(handshake.error_code)}); it offers {', '.join(handshake.mechanisms)}"
            )
        try:
            answer = self._authenticate(tokens[0])
            if scram is not None:
                scram.verify(self._authenticate(scram.final(answer)))
        except AuthenticationFailed as exc:
            raise WireError(f"login to the {self.name} as {user!r} failed: {exc}") from None

    def _authenticate(self, token: bytes) -> bytes:
        response = self.call(36, {"auth_bytes": token})
        if response.error_code != 0:
            raise AuthenticationFailed(response.error_message or error_name(response.error_code))
        return bytes(response.auth_bytes)

    def _roundtrip(self, api_key: int, version: int, body: Mapping[str, Any]) -> bytes:
        self._correlation_id += 1
        sent = self._correlation_id
        request_type = load_request_schema(api_key, version)
        header_type = RequestHeaderV2 if request_type.__flexible__ else RequestHeaderV1
        header = {
            "request_api_key": api_key,
            "request_api_version": version,
            "correlation_id": sent,
            "client_id": self._client_id,
        }
        out = io.BytesIO()
        out.write(b"\x00\x00\x00\x00")  # size prefix, filled in below
        _writer(header_type)(out, to_entity(header_type, header))
        _writer(request_type)(out, to_entity(request_type, body))
        data = out.getbuffer()
        _SIZE.pack_into(data, 0, len(data) - 4)
        what = f"{api_name(api_key)} v{version}"
        try:
            frame = self._exchange(bytes(data), what)
            (received,) = _SIZE.unpack_from(frame, 0)
            if received != sent:
                raise WireError(
                    f"the {self.name} answered correlation id {received} to request "
                    f"{sent} ({what}); the connection is out of step, run the command again"
                )
        except WireError:
            # Whatever is left on the socket cannot be matched to a request any more.
            self.close()
            raise
        return frame

    def _exchange(self, data: bytes, what: str) -> bytes:
        try:
            self._sock.sendall(data)
            (size,) = _SIZE.unpack(self._read_exact(4, what))
            if not 4 <= size <= RESPONSE_BYTES_MAX:
                raise WireError(
                    f"the {self.name} sent a {size}-byte frame to {what}; "
                    "is this a Kafka listener, and does HEADWATER_CLIENT_CONFIG match its "
                    "security protocol?"
                )
            return self._read_exact(size, what)
        except TimeoutError:
            raise WireError(
                f"the {self.name} did not answer {what} in time; "
                "is it overloaded, or is this a TLS-only listener?"
            ) from None
        except OSError as exc:
            raise WireError(
                f"lost the connection to the {self.name} during {what} ({_reason(exc)})"
            ) from None

    def _read_exact(self, size: int, what: str) -> bytes:
        chunks = bytearray()
        while len(chunks) < size:
            chunk = self._sock.recv(size - len(chunks))
            if not chunk:
                raise WireError(
                    f"the {self.name} closed the connection during {what}; "
                    "its log may say why (an unsupported request or version?)"
                )
            chunks += chunk
        return bytes(chunks)

    def _decode(self, api_key: int, version: int, frame: bytes) -> Any:
        response_type = response_schema(api_key, version)
        view = memoryview(frame)
        try:
            # ApiVersions answers always use header v0, so clients can read them before
            # they know which versions the broker speaks.
            if response_type.__flexible__ and api_key != API_VERSIONS:
                _header, offset = _reader(ResponseHeaderV1)(view, 0)
            else:
                offset = 4
            entity, _used = _reader(response_type)(view, offset)
        except Exception as exc:  # kio's native reader raises its own types on bad input
            raise WireError(
                f"cannot decode the {api_name(api_key)} v{version} response from "
                f"the {self.name}: {exc}"
            ) from None
        return entity


def _error_code_at(frame: bytes, offset: int) -> int:
    if len(frame) < offset + 2:
        return 0
    return int.from_bytes(frame[offset : offset + 2], "big", signed=True)


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    return exc.strerror or type(exc).__name__


def _tls(
    sock: socket.socket, host: str, settings: Mapping[str, str], role: str, address: str
) -> socket.socket:
    """The socket wrapped in TLS as librdkafka would with these settings."""
    context = ssl.create_default_context(cafile=settings.get("ssl.ca.location") or None)
    if settings.get("ssl.endpoint.identification.algorithm", "https").lower() == "none":
        context.check_hostname = False
    certificate = settings.get("ssl.certificate.location")
    if certificate:
        context.load_cert_chain(
            certificate, settings.get("ssl.key.location"), settings.get("ssl.key.password")
        )
    try:
        return context.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, OSError) as exc:
        raise WireError(f"TLS to the {role} {address} failed: {exc}") from None
