"""The asyncio shell of the broker: sockets, framing, dispatch and background tasks.

Request path per connection: read frame → authenticate (TLS/SASL session) → handler, which
authorises what it touches (``_authorize``) → response, answered in request order. Handlers
run concurrently so a long-polling fetch never blocks a produce pipelined behind it on the
same connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import ssl
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from headwater.broker import _audit
from headwater.broker import handlers as _handlers  # noqa: F401  (registers every API)
from headwater.broker._audit_topic import AuditTopicSink, ensure_audit_topic
from headwater.broker._budget import ByteBudget
from headwater.broker._capture import FrameCapture
from headwater.broker._config import BrokerConfig
from headwater.broker._context import RequestContext
from headwater.broker._group_commit import GroupCommitter
from headwater.broker._groups_shell import GroupsShell
from headwater.broker._listeners import Listener
from headwater.broker._metrics import BrokerMetrics, MetricsServer
from headwater.broker._offsets import OffsetStore
from headwater.broker._quota_service import ClientQuotas, quotas_path
from headwater.broker._ratelog import RateLimitedLog
from headwater.broker._registry import HANDLERS
from headwater.broker._session import Session
from headwater.broker._tls_stream import TlsStream
from headwater.broker._topics import TopicManager
from headwater.broker._txn_coordinator import TransactionCoordinator
from headwater.broker.handlers.sasl import raw_token
from headwater.protocol import FrameError, ProtocolError
from headwater.protocol._codec import decode_request, encode_response, peek_header
from headwater.protocol._framing import FrameReader
from headwater.security._acl_store import AclStore, acl_path
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.storage._durable_file import read_json, write_json

if TYPE_CHECKING:
    from headwater.security._acl import Authorizer
    from headwater.security._audit import AuditLog
    from headwater.security._tls import PrincipalMapper, ServerTls

log = logging.getLogger(__name__)

# How much one socket read may take; a frame larger than this arrives over several reads.
_READ_BYTES = 256 * 1024


class RequestRejected(ProtocolError):
    """A request refused before any handler ran: it closes its connection and is counted."""

    def __init__(self, api_key: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.api_key = api_key
        self.reason = reason


class _ByteSource(Protocol):
    """Where a connection's bytes come from: the socket's stream, or TLS over it."""

    async def read(self, size: int, /) -> bytes: ...


@dataclasses.dataclass(slots=True)
class _Connection:
    """Per-connection state the reader and writer tasks share."""

    client: str
    responses: asyncio.Queue[asyncio.Task[bytes | None] | None]
    session: Session
    inflight: int = 0
    # KIP-219: a throttled client's connection is not read from until then (time.monotonic).
    muted_until: float = 0.0
    # Set once a request of this connection fell under a quota: from then on its requests are
    # handled one at a time, as Kafka handles every connection, so a throttle mutes it before
    # the next request rather than after a pipeline of them.
    quota_bound: bool = False

    @property
    def client_host(self) -> str:
        return self.client.rsplit(":", 1)[0]

    def done(self, budget: ByteBudget, size: int, _task: asyncio.Task[bytes | None]) -> None:
        self.inflight -= 1
        budget.release(size)


async def _unmuted(conn: _Connection) -> None:
    """Wait out a quota throttle before the next request (the response already went out)."""
    if not conn.muted_until:
        return
    delay = conn.muted_until - time.monotonic()
    conn.muted_until = 0.0
    if delay > 0:
        await asyncio.sleep(delay)


API_VERSIONS_KEY = 18
UNSUPPORTED_VERSION = 35
PRODUCER_ID_BLOCK = 1000
TXN_CHECK_INTERVAL_S = 1.0


class Broker:
    """A single-node Kafka-protocol broker. ``await start()``, then ``await close()``."""

    def __init__(self, config: BrokerConfig, clock: Callable[[], float] = time.time) -> None:
        config.validate()
        self.config = config
        self._clock = clock
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._connections: set[asyncio.Task[Any]] = set()
        self._closing = False
        self.committer = GroupCommitter()
        self.metrics = BrokerMetrics()
        self._bad_input = RateLimitedLog(log)
        self.auth_failures = RateLimitedLog(log)
        self.authorization_denials = RateLimitedLog(logging.getLogger("headwater.authorizer"))
        # Set at start when config.authorizer_enabled; None means everyone may do everything.
        self.authorizer: Authorizer | None = None
        self.audit: AuditLog | None = None
        self.listeners = config.listener_list()
        self._advertised = config.advertised_map()
        self._servers: dict[str, asyncio.Server] = {}
        self._tls: ServerTls | None = None
        self._principal_mapper: PrincipalMapper | None = None
        if any(x.tls for x in self.listeners):
            self._tls, self._principal_mapper = self._server_tls(config)
        self.metrics_server: MetricsServer | None = None
        self.request_budget = ByteBudget(config.queued_request_bytes_max)
        # Test-only fault hooks, honoured only when config.fault_hooks is set: api_key ->
        # "close" (drop the connection), "delay:<ms>", or "drop-response" (apply, never answer).
        self.faults: dict[int, str] = {}
        self.started_ms = 0
        self._pid_next = self._pid_limit = 0
        capture_dir = config.frame_capture_dir
        self._capture = FrameCapture(capture_dir) if capture_dir is not None else None

    def now_ms(self) -> int:
        return int(self._clock() * 1000)

    @staticmethod
    def _server_tls(config: BrokerConfig) -> tuple[ServerTls, PrincipalMapper]:
        """TLS, imported only when a listener needs it (cryptography is large to load)."""
        from headwater.security._tls import PrincipalMapper, ServerTls, TlsSettings

        assert config.ssl_certfile is not None and config.ssl_keyfile is not None
        settings = TlsSettings(
            certfile=config.ssl_certfile,
            keyfile=config.ssl_keyfile,
            cafile=config.ssl_cafile,
            key_password=config.ssl_key_password,
            client_auth=config.ssl_client_auth,
        )
        settings.validate()
        return ServerTls(settings), PrincipalMapper(config.ssl_principal_mapping_rules)

    @property
    def port(self) -> int:
        """The bound port of the first listener."""
        return self.listener_port(self.listeners[0].name)

    def listener_port(self, name: str) -> int:
        server = self._servers.get(name)
        assert server is not None, f"listener {name} not started"
        return int(server.sockets[0].getsockname()[1])

    @property
    def advertised(self) -> tuple[str, int]:
        """What the first listener advertises (the bootstrap address of local tools)."""
        return self.advertised_for(self.listeners[0].name)

    def advertised_for(self, name: str) -> tuple[str, int]:
        """The address a client that came in on listener ``name`` is sent back to."""
        listener = next(x for x in self.listeners if x.name == name)
        host, port = self._advertised.get(name, (listener.host, listener.port))
        if host in ("", "0.0.0.0", "::"):  # a wildcard bind is no address to connect to
            host = "127.0.0.1" if listener.loopback or not host else host
        return host, (port if port else self.listener_port(name))

    async def start(self) -> None:
        """Recover storage, bind the listener and start background work."""
        now = self.now_ms()
        self.started_ms = now
        self.config.data_dir.mkdir(parents=True, exist_ok=True)
        sink = AuditTopicSink(self) if self.config.audit_topic_enabled else None
        self.audit = _audit.open_audit_log(self.config, sink)
        self.topics = TopicManager(self.config.data_dir, self.config.topic_defaults, now)
        if self.audit is not None and self.config.audit_topic_enabled:
            ensure_audit_topic(self)
        self.offsets = OffsetStore(self.config.data_dir, now)
        self.acls = AclStore(acl_path(self.config.data_dir))
        self.credentials = CredentialStore(credentials_path(self.config.data_dir))
        self.quotas = ClientQuotas(quotas_path(self.config.data_dir))
        if self.config.authorizer_enabled:
            self.authorizer = self.acls.authorizer(
                frozenset(self.config.super_users), self.config.allow_everyone_if_no_acl_found
            )
        self.groups = GroupsShell(self)
        self._tasks.add(asyncio.create_task(self.committer.run()))
        self.transactions = TransactionCoordinator(self)
        await self.transactions.recover()
        for listener in self.listeners:
            self._servers[listener.name] = await asyncio.start_server(
                functools.partial(self._serve_connection, listener),
                listener.host,
                listener.port,
                limit=1 << 20,
            )
        self._server = self._servers[self.listeners[0].name]
        if self.config.metrics_port is not None:
            auth = None
            if self.config.metrics_basic_auth:
                from headwater.security._http_auth import BasicAuth

                auth = BasicAuth(self.credentials, realm="headwater-metrics")
            self.metrics_server = MetricsServer(
                self.metrics.registry,
                self.config.host,
                self.config.metrics_port,
                certfile=self.config.metrics_ssl_certfile,
                keyfile=self.config.metrics_ssl_keyfile,
                auth=auth,
            )
        for coro in (self.groups.run(), self._maintenance(), self._expire_transactions()):
            task = asyncio.create_task(coro)
            self._tasks.add(task)
        if self._tls is not None:
            self._tasks.add(asyncio.create_task(self._refresh_tls(self._tls)))
        for listener in self.listeners:
            log.info(
                "broker listening listener=%s protocol=%s host=%s port=%d data_dir=%s",
                listener.name,
                listener.protocol,
                listener.host,
                self.listener_port(listener.name),
                self.config.data_dir,
            )

    async def close(self) -> None:
        """Stop accepting, cancel connections and tasks, flush and close every log."""
        self._closing = True
        for server in self._servers.values():
            server.close()
        # A connection accepted just before the close has a task that has not run yet: let it
        # run, see the broker closing and end, so no task is left pending on a closed loop.
        await asyncio.sleep(0)
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None
        for task in list(self._connections) + list(self._tasks):
            task.cancel()
        for task in list(self._connections) + list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            for server in self._servers.values():
                await server.wait_closed()
            self._servers.clear()
            await self.topics.drain()
            self.topics.close()
            self.offsets.close()
            self.transactions.close()
            self._server = None
        if self.audit is not None:
            self.audit.close()
            self.audit = None

    async def serve_forever(self) -> None:
        assert self._server is not None
        await self._server.serve_forever()

    # -- background --------------------------------------------------------------------
    async def _maintenance(self) -> None:
        """Retention and compaction, off the hot path, one partition at a time."""
        interval = self.config.retention_check_interval_ms / 1000
        while True:
            await asyncio.sleep(interval)
            self.run_retention()
            try:
                self.topics.snapshot_producers()
            except OSError as exc:
                log.error("producer state snapshot failed error=%s", exc)

    @staticmethod
    async def _refresh_tls(tls: ServerTls) -> None:
        """Re-read renewed certificate files; later handshakes use them (checked each second).

        asyncio has no hook before a handshake, so the check runs on a timer rather than per
        connection, on the event loop thread that owns the context.
        """
        while True:
            await asyncio.sleep(1.0)
            tls.refresh()

    async def _expire_transactions(self) -> None:
        """Abort transactions that outlived transaction.timeout.ms (checked every second)."""
        while True:
            await asyncio.sleep(TXN_CHECK_INTERVAL_S)
            try:
                await _audit.expire_transactions(self)
            except OSError as exc:
                log.error("transaction expiry failed error=%s", exc)

    def run_retention(self) -> int:
        now = self.now_ms()
        deleted = 0
        for partition in self.topics.all_partitions():
            try:
                deleted += partition.log.enforce_retention(now)
                if "compact" in partition.log.config.cleanup_policy:
                    partition.log.compact(now)
            except OSError as exc:
                log.error(
                    "retention failed topic=%s partition=%d error=%s",
                    partition.topic,
                    partition.index,
                    exc,
                )
        try:
            self.offsets.log.compact(now)
        except OSError as exc:
            log.error("offsets compaction failed error=%s", exc)
        return deleted

    # -- connections -------------------------------------------------------------------
    async def _serve_connection(
        self, listener: Listener, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        task = asyncio.current_task()
        assert task is not None
        peer = writer.get_extra_info("peername")
        client = f"{peer[0]}:{peer[1]}" if peer else "unknown"
        if self._closing:
            writer.close()
            return
        if len(self._connections) >= self.config.connections_max:
            self.metrics.connections_refused.labels("connections_max").inc()
            self._bad_input.warning(
                "connection refused: connections_max=%d reached peer=%s",
                self.config.connections_max,
                client,
            )
            writer.close()
            return
        self._connections.add(task)
        self.metrics.connections_accepted.inc()
        self.metrics.connections_active.inc()
        source: _ByteSource = reader
        write: Callable[[bytes], None] = writer.write
        tls_principal = None
        if listener.tls:
            tls = await self._handshake(reader, writer, client, listener)
            if tls is None:
                self._connections.discard(task)
                self.metrics.connections_active.dec()
                return
            source, write, tls_principal = tls, tls.write, self._tls_principal(tls.ssl_object)
        conn = _Connection(
            client,
            asyncio.Queue(self.config.inflight_requests_max),
            Session.open(listener, tls_principal),
        )
        writer_task = asyncio.create_task(self._write_responses(conn, writer, write))
        peer_gone = True
        try:
            await self._read_requests(source, conn)
            peer_gone = False  # the session ended it: answer what is in flight, then close
        except (ConnectionError, asyncio.IncompleteReadError):
            log.debug("connection closed by peer=%s", client)
        except asyncio.CancelledError:
            # Broker shutdown: end quietly (the streams callback inspects this task's result).
            pass
        except TimeoutError:
            self.metrics.connections_closed.labels("idle").inc()
            log.info("closing idle connection peer=%s", client)
        except ProtocolError as exc:
            self._reject(conn, None, exc)
            peer_gone = False  # answer what came before the bad frame, then close
        finally:
            if peer_gone or conn.responses.full():
                writer_task.cancel()
            else:
                conn.responses.put_nowait(None)
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await writer_task
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            self._connections.discard(task)
            self.metrics.connections_active.dec()

    async def _handshake(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client: str,
        listener: Listener,
    ) -> TlsStream | None:
        """TLS for an accepted connection within ssl_handshake_timeout_ms, or None (refused:
        the client has been sent OpenSSL's alert, and the reason is logged and counted)."""
        assert self._tls is not None
        tls = TlsStream(reader, writer, self._tls.context())
        try:
            async with asyncio.timeout(self.config.ssl_handshake_timeout_ms / 1000):
                await tls.handshake()
        except (TimeoutError, OSError) as exc:  # ssl.SSLError and ConnectionError included
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc)
            self.metrics.connections_closed.labels("tls_handshake").inc()
            self.auth_failures.warning(
                "TLS handshake refused listener=%s peer=%s reason=%s",
                listener.name,
                client,
                reason,
            )
            writer.close()  # after the alert: close() sends what is queued
            with contextlib.suppress(Exception):
                await writer.wait_closed()
            return None
        return tls

    def _tls_principal(self, ssl_object: ssl.SSLObject) -> str | None:
        """``User:<mapped subject>`` of the client certificate, if the client sent one."""
        if self._principal_mapper is None:
            return None
        from headwater.security._tls import peer_principal

        name = peer_principal(ssl_object, self._principal_mapper.map)
        return None if name is None else f"User:{name}"

    async def _read_requests(self, reader: _ByteSource, conn: _Connection) -> None:
        """Cut frames from the socket and start a handler for each, in order.

        A connection with nothing in flight that stays silent for connections_max_idle_ms is
        closed (TimeoutError), as Kafka does, so half-sent frames cannot hold it forever. Each
        frame's bytes are reserved from the broker-wide request budget from the moment its
        size is known until its handler is done. Until a SASL connection has authenticated,
        its frames are capped at sasl_server_max_receive_size and handled one at a time; the
        reader returns (closing the connection once the answers are out) when the session
        says so.
        """
        session = conn.session
        framer = FrameReader(
            self.config.frame_bytes_max
            if session.authenticated
            else self.config.sasl_server_max_receive_size
        )
        idle_s = self.config.connections_max_idle_ms / 1000
        budget = self.request_budget
        reserved = 0  # bytes reserved for the frame now being received
        try:
            while True:
                try:
                    async with asyncio.timeout(idle_s):
                        data = await reader.read(_READ_BYTES)
                except TimeoutError:
                    if conn.inflight:
                        continue
                    raise
                if not data:
                    raise asyncio.IncompleteReadError(b"", framer.frame_bytes_expected or None)
                for frame in framer.feed(data):
                    size = len(frame)
                    if reserved:
                        reserved = 0  # the reservation passes to the request
                    elif not budget.try_reserve(size):
                        await budget.reserve(size)
                    sequential = session.sequential
                    request = asyncio.create_task(
                        raw_token(self, session, conn.client_host, frame)
                        if session.raw_tokens
                        else self._dispatch(frame, conn)
                    )
                    conn.inflight += 1
                    request.add_done_callback(functools.partial(conn.done, budget, size))
                    await conn.responses.put(request)
                    if sequential:
                        await asyncio.wait({request})
                        if session.closing:
                            return
                        if session.authenticated:
                            framer.frame_bytes_max = self.config.frame_bytes_max
                    elif conn.quota_bound:
                        await asyncio.wait({request})
                        await _unmuted(conn)
                expected = framer.frame_bytes_expected
                if expected and not reserved:
                    await budget.reserve(expected)
                    reserved = expected
        finally:
            if reserved:
                budget.release(reserved)

    async def _write_responses(
        self, conn: _Connection, writer: asyncio.StreamWriter, write: Callable[[bytes], None]
    ) -> None:
        """Send answers in request order; ``write`` encrypts first on a TLS listener."""
        responses = conn.responses
        try:
            while True:
                request = await responses.get()
                if request is None:
                    return
                try:
                    data = await request
                except ProtocolError as exc:
                    self._reject(conn, getattr(exc, "api_key", None), exc)
                    writer.transport.abort()
                    return
                except Exception:
                    self.metrics.connections_closed.labels("handler_error").inc()
                    self._bad_input.warning(
                        "handler failed; closing the connection peer=%s",
                        conn.client,
                        exc_info=True,
                    )
                    writer.transport.abort()
                    return
                if data is not None:
                    write(data)
                    if writer.transport.get_write_buffer_size() > 4 * 1024 * 1024:
                        await writer.drain()
        finally:
            # Requests nobody will read the answer to (peer gone, or an earlier one failed).
            while not responses.empty():
                pending = responses.get_nowait()
                if pending is not None:
                    pending.cancel()

    def _reject(self, conn: _Connection, api_key: int | None, exc: ProtocolError) -> None:
        """Count and log (rate-limited) input that closes its connection."""
        reason = (
            "frame_size" if isinstance(exc, FrameError) else getattr(exc, "reason", "malformed")
        )
        self.metrics.rejected(api_key, reason)
        self.metrics.connections_closed.labels(reason).inc()
        self._bad_input.warning("closing connection peer=%s reason=%s", conn.client, exc)

    async def handle_frame(
        self, frame: bytes, client: str = "local:0", session: Session | None = None
    ) -> bytes | None:
        """Answer one request frame (without its size prefix) as a connection would.

        Returns the size-prefixed response, or None when the request takes none (acks=0).
        Raises ``ProtocolError`` for input that closes a connection. ``session`` carries a
        connection's authentication across frames (a new one on the first listener if None).
        The request fuzzer and its regression tests drive the broker through this, without
        sockets.
        """
        if session is None:
            session = Session.open(self.listeners[0], None)
        return await self._dispatch(frame, _Connection(client, asyncio.Queue(), session))

    async def _dispatch(self, frame: bytes, conn: _Connection) -> bytes | None:
        api_key, version, correlation_id = peek_header(frame)
        handler = HANDLERS.get(api_key)
        if api_key == API_VERSIONS_KEY and (handler is None or version > handler.max_version):
            # Kafka answers an unknown ApiVersions version with a v0 body listing what it
            # speaks, so that newer clients can retry with a version both sides know.
            return encode_response(
                API_VERSIONS_KEY,
                0,
                correlation_id,
                {"error_code": UNSUPPORTED_VERSION, "api_keys": self.api_versions()},
            )
        if handler is None:
            raise RequestRejected(api_key, "unknown_api", f"unknown api_key={api_key}")
        if not handler.min_version <= version <= handler.max_version:
            raise RequestRejected(
                api_key,
                "unsupported_version",
                f"unsupported version api_key={api_key} ({handler.name}) v{version}; "
                f"supported {handler.min_version}..{handler.max_version}",
            )
        try:
            conn.session.admit(api_key, self.now_ms())
        except ProtocolError as exc:
            raise RequestRejected(api_key, "authentication", str(exc)) from None
        try:
            header, body = decode_request(frame)
        except ProtocolError as exc:
            raise RequestRejected(
                api_key, "malformed", f"undecodable {handler.name} v{version}: {exc}"
            ) from None
        self.metrics.request(api_key)
        if self._capture is not None:
            self._capture.offer(frame, api_key, version, header.client_id)
        action = self.faults.pop(api_key, None) if self.config.fault_hooks else None
        if action == "close":
            raise ProtocolError(f"fault hook closed the connection on api_key={api_key}")
        if action is not None and action.startswith("delay:"):
            await asyncio.sleep(int(action.split(":", 1)[1]) / 1000)
        ctx = RequestContext(self, header, conn.client_host, conn.session)
        if self.quotas.active:
            response, throttle_ms, conn.quota_bound = await self.quotas.handle(
                ctx, handler.fn, body
            )
            if throttle_ms:
                conn.muted_until = max(conn.muted_until, time.monotonic() + throttle_ms / 1000)
        else:
            response = await handler.fn(ctx, body)
        if self.audit is not None:
            _audit.audit_request(self, ctx, api_key, body, response)
        if response is None:
            return None
        if action == "drop-response":
            # The request took effect but the client never hears back, so it must retry.
            raise ProtocolError(f"fault hook dropped the response to api_key={api_key}")
        return encode_response(api_key, version, correlation_id, response)

    def allocate_producer_id(self) -> int:
        """A producer id never handed out before, even across restarts (durable blocks)."""
        if self._pid_next >= self._pid_limit:
            path = self.config.data_dir / "__meta" / "producer-ids.json"
            start = int((read_json(path) or {}).get("next_block", 1000))
            write_json(path, {"next_block": start + PRODUCER_ID_BLOCK})
            self._pid_next, self._pid_limit = start, start + PRODUCER_ID_BLOCK
        pid = self._pid_next
        self._pid_next += 1
        return pid

    def api_versions(self) -> list[dict[str, int]]:
        return [
            {"api_key": h.api_key, "min_version": h.min_version, "max_version": h.max_version}
            for h in sorted(HANDLERS.values(), key=lambda h: h.api_key)
        ]
