"""A minimal raw Kafka client for tests that must send exactly the bytes they choose."""

from __future__ import annotations

import io
import socket
import struct
from typing import Any

from kio.index import load_request_schema, load_response_schema
from kio.schema.request_header.v1.header import RequestHeader as HeaderV1
from kio.schema.request_header.v2.header import RequestHeader as HeaderV2
from kio.serial import entity_reader, entity_writer

from headwater.protocol._codec import to_entity


def connect(bootstrap: str) -> socket.socket:
    host, port = bootstrap.rsplit(":", 1)
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def encode_request(
    api_key: int, version: int, body: dict[str, Any], correlation_id: int = 1
) -> bytes:
    entity_type = load_request_schema(api_key, version)
    flexible = entity_type.__flexible__
    header_type = HeaderV2 if flexible else HeaderV1
    out = io.BytesIO()
    entity_writer(header_type)(
        out,
        header_type(
            request_api_key=api_key,
            request_api_version=version,
            correlation_id=correlation_id,
            client_id="raw-test",
        ),
    )
    entity_writer(entity_type)(out, to_entity(entity_type, body))
    data = out.getvalue()
    return struct.pack(">i", len(data)) + data


def read_frame(sock: socket.socket) -> bytes | None:
    """One response frame, or None if the broker closed the connection."""
    prefix = _read_exact(sock, 4)
    if prefix is None:
        return None
    (size,) = struct.unpack(">i", prefix)
    return _read_exact(sock, size)


def _read_exact(sock: socket.socket, size: int) -> bytes | None:
    chunks = bytearray()
    while len(chunks) < size:
        try:
            chunk = sock.recv(size - len(chunks))
        except ConnectionResetError:
            return None
        if not chunk:
            return None
        chunks += chunk
    return bytes(chunks)


def call(sock: socket.socket, api_key: int, version: int, body: dict[str, Any]) -> Any:
    sock.sendall(encode_request(api_key, version, body))
    frame = read_frame(sock)
    assert frame is not None, "broker closed the connection"
    response_type = load_response_schema(api_key, version)
    header_len = 4 if (not response_type.__flexible__ or api_key == 18) else 5
    entity, _ = entity_reader(response_type)(memoryview(frame), header_len)
    return entity


def txn_offset_commit(
    sock: socket.socket,
    version: int,
    txn: tuple[str, int, int],
    group: str,
    topic: str,
    offset: int,
) -> int:
    """TxnOffsetCommit of partition 0 of ``topic`` for ``txn`` = (transactional id, producer
    id, epoch), as a standalone consumer would (generation -1, no member id); its error code."""
    txn_id, producer_id, producer_epoch = txn
    response = call(
        sock,
        28,
        version,
        {
            "transactional_id": txn_id,
            "group_id": group,
            "producer_id": producer_id,
            "producer_epoch": producer_epoch,
            "generation_id": -1,
            "member_id": "",
            "topics": [
                {
                    "name": topic,
                    "partitions": [
                        {"partition_index": 0, "committed_offset": offset, "committed_metadata": ""}
                    ],
                }
            ],
        },
    )
    return int(response.topics[0].partitions[0].error_code)
