"""One fuzz input through the broker's request path, in process: framing, decoding, dispatch.

An input is a byte stream as a client would send it on one connection: size-prefixed frames.
The stream is cut by the broker's own ``FrameReader``; each frame goes through
``Broker.handle_frame`` (decode, dispatch, handler, response encoding) in order, and the
stream ends at the first frame that would close the connection, as on a socket. An input
whose first frame is a SASL request runs on a SASL_PLAINTEXT listener's session (a user
exists), so the SASL exchange and the rules before authentication are fuzzed too; the rest
runs on a PLAINTEXT session.

What counts as a finding (an exception out of ``Harness.run``):
- any exception from the broker other than ``ProtocolError`` (which closes one connection);
- a response that does not decode with kio as the response of the request's API and version;
- a request the bounded decoder accepted that kio's native reader decodes differently.
A handler still waiting after a short budget (a long-poll fetch, a join waiting for its group)
is cancelled, which is what happens when its connection closes.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import logging
import shutil
import struct
import tempfile
from pathlib import Path
from typing import Any

from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_reader, entity_writer

from headwater.broker import Broker, BrokerConfig, new_event_loop
from headwater.broker._session import Session
from headwater.protocol import ProtocolError
from headwater.protocol._codec import decode_request, request_type, response_type
from headwater.protocol._framing import FrameReader
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._scram import ScramCredential

FRAME_BYTES_MAX = 1024 * 1024
HANDLER_BUDGET_S = 0.02
SASL_API_KEYS = (17, 36)
# The user the recorded SASL seeds log in as, so PLAIN seeds reach the authenticated state.
FUZZ_USER, FUZZ_PASSWORD = "alice", "pw"
# A fresh broker now and then: a fuzzed topic of 10,000 partitions makes later answers slow.
INPUTS_PER_BROKER = 500


class Finding(AssertionError):
    """The broker did something it must never do with this input."""


class Harness:
    """A broker on a private event loop and temp folder, fed one input at a time."""

    def __init__(self, quiet: bool = True) -> None:
        if quiet:
            logging.getLogger("headwater").setLevel(logging.CRITICAL)
        self.loop = new_event_loop()
        # Memory-backed when the system has it: topic creation fsyncs, which a disk makes slow.
        shm = Path("/dev/shm")
        parent = shm if shm.is_dir() else None
        self._root = Path(tempfile.mkdtemp(prefix="headwater-fuzz-", dir=parent))
        self._generation = 0
        self._inputs = 0
        self.broker = self._start()

    def _start(self) -> Broker:
        self._generation += 1
        data_dir = self._root / str(self._generation)
        store = CredentialStore(credentials_path(data_dir))
        for mechanism in ("SCRAM-SHA-256", "SCRAM-SHA-512"):
            store.upsert(FUZZ_USER, ScramCredential.from_password(mechanism, FUZZ_PASSWORD))
        config = BrokerConfig(
            data_dir=data_dir,
            listeners="PLAINTEXT://127.0.0.1:0,SASL_PLAINTEXT://127.0.0.1:0",
            frame_bytes_max=FRAME_BYTES_MAX,
            fsync_policy="never",
            connection_failed_authentication_delay_ms=0,
        )
        broker = Broker(config)
        self.loop.run_until_complete(broker.start())
        return broker

    def close(self) -> None:
        self.loop.run_until_complete(self.broker.close())
        self.loop.close()
        shutil.rmtree(self._root, ignore_errors=True)

    def run(self, data: bytes) -> None:
        """Feed one input; raise ``Finding`` (or the broker's exception) if it misbehaves."""
        self._inputs += 1
        if self._inputs % INPUTS_PER_BROKER == 0:
            self.loop.run_until_complete(self.broker.close())
            shutil.rmtree(self.broker.config.data_dir, ignore_errors=True)
            self.broker = self._start()
        try:
            frames = FrameReader(FRAME_BYTES_MAX).feed(data)
        except ProtocolError:
            return
        if not frames:
            return
        sasl = len(frames[0]) >= 2 and struct.unpack_from(">h", frames[0])[0] in SASL_API_KEYS
        session = Session.open(self.broker.listeners[1 if sasl else 0], None)
        for frame in frames:
            if not self._one(frame, session) or session.closing:
                return

    def _one(self, frame: bytes, session: Session) -> bool:
        """Dispatch one frame; False when the connection would now be closed."""
        check_against_kio(frame)
        task = self.loop.create_task(self.broker.handle_frame(frame, "fuzz:1", session))
        self.loop.run_until_complete(asyncio.wait({task}, timeout=HANDLER_BUDGET_S))
        if not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, ProtocolError):
                self.loop.run_until_complete(task)
            return False
        try:
            response = task.result()
        except ProtocolError:
            return False
        if response is not None:
            check_response(frame, response)
        return True


def check_against_kio(frame: bytes) -> None:
    """Whatever the bounded decoder accepts, kio's native reader must read the same way.

    kio is called only after the bounded decoder accepted the frame: on hostile lengths the
    native reader aborts the whole process, which is why the broker does not use it.
    """
    try:
        _header, body = decode_request(frame)
    except ProtocolError:
        return
    api_key, version = struct.unpack_from(">hh", frame, 0)
    body_type = request_type(api_key, version)
    header_type = HeaderV2 if body_type.__flexible__ else HeaderV1
    view = memoryview(frame)
    try:
        _, used = entity_reader(header_type)(view, 0)
        native, _ = entity_reader(body_type)(view, used)
    except Exception as exc:
        # Deliberate differences, all Kafka's rules: any non-zero byte is a true boolean,
        # unknown tagged fields are skipped, any int64 is a duration (kio refuses them).
        if any(word in str(exc) for word in ("boolean", "tagged field", "milliseconds overflow")):
            return
        if _only_null_markers_differ(frame[used:], body_type, body):
            return
        raise Finding(f"accepted by the bounded decoder, refused by kio: {exc!r}") from exc
    if native != body and not _only_null_markers_differ(frame[used:], body_type, body):
        raise Finding(f"decoders disagree:\n  bounded {body!r}\n  kio     {native!r}")


def _only_null_markers_differ(raw_body: bytes, body_type: type[Any], body: Any) -> bool:
    """True when the body differs from kio's encoding of what the bounded decoder read only
    where a nullable struct's presence byte is negative but not -1.

    Kafka reads any negative presence byte as null (its generated readers test ``< 0``); kio
    reads only -1 as null and takes the rest for a present struct. Everything else must match
    byte for byte, and both decoders must read the canonical encoding as the same entity.
    """
    out = io.BytesIO()
    entity_writer(body_type)(out, body)
    canonical = out.getvalue()
    if len(canonical) != len(raw_body) or canonical == raw_body:
        return False
    for sent, written in zip(raw_body, canonical, strict=True):
        if sent != written and not (written == 0xFF and 0x80 <= sent < 0xFF):
            return False
    native, _ = entity_reader(body_type)(memoryview(canonical), 0)
    return bool(native == body)


def check_response(frame: bytes, response: bytes) -> None:
    """The response is one well-formed frame of the request's API and version."""
    api_key, version, correlation_id = struct.unpack_from(">hhi", frame, 0)
    (size,) = struct.unpack_from(">i", response, 0)
    if size != len(response) - 4:
        raise Finding(f"response size prefix {size} but {len(response) - 4} bytes follow")
    (echoed,) = struct.unpack_from(">i", response, 4)
    if echoed != correlation_id:
        raise Finding(f"response correlation id {echoed}, request had {correlation_id}")
    if api_key == 18 and struct.unpack_from(">h", response, 8)[0] == 35:
        return  # UNSUPPORTED_VERSION: answered as a v0 body, on purpose
    entity_type = response_type(api_key, version)
    header_bytes = 4 if (not entity_type.__flexible__ or api_key == 18) else 5
    try:
        _entity: Any
        _entity, used = entity_reader(entity_type)(memoryview(response[4:]), header_bytes)
    except Exception as exc:
        if "negative timestamp" in str(exc):
            return  # -1 "no time" (Kafka sends it too) is a valid int64 kio will not parse
        raise Finding(f"response to api_key={api_key} v{version} does not decode: {exc}") from exc
    if used + header_bytes != size:
        raise Finding(f"response to api_key={api_key} v{version} has trailing bytes")
