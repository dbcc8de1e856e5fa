"""Codecs: every handled (api, version) decodes what a client encodes and encodes responses
that decode back to the same values."""

from __future__ import annotations

import contextlib
import io
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kio.serial import entity_reader, entity_writer

from headwater.broker._registry import HANDLERS
from headwater.broker._server import Broker  # noqa: F401  (registers handlers)
from headwater.protocol import ProtocolError
from headwater.protocol._codec import (
    decode_request,
    encode_response,
    response_type,
    to_entity,
)
from rawkafka import encode_request

HANDLED = [
    (h.api_key, v) for h in HANDLERS.values() for v in range(h.min_version, h.max_version + 1)
]


@pytest.mark.parametrize(("api_key", "version"), HANDLED)
def test_empty_request_round_trips(api_key: int, version: int) -> None:
    frame = encode_request(api_key, version, {}, correlation_id=42)[4:]
    header, body = decode_request(frame)
    assert (header.api_key, header.api_version, header.correlation_id) == (api_key, version, 42)
    assert type(body).__api_key__ == api_key


@pytest.mark.parametrize(("api_key", "version"), HANDLED)
def test_default_response_encodes_and_decodes(api_key: int, version: int) -> None:
    frame = encode_response(api_key, version, 7, {})
    entity_type = response_type(api_key, version)
    header_len = 4 if (not entity_type.__flexible__ or api_key == 18) else 5
    (size,) = struct.unpack_from(">i", frame, 0)
    assert size == len(frame) - 4
    decoded, used = entity_reader(entity_type)(memoryview(frame[4:]), header_len)
    assert used + header_len == size
    again = io.BytesIO()
    entity_writer(entity_type)(again, decoded)
    assert again.getvalue() == frame[4 + header_len :]


names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz.-_", min_size=1, max_size=20)


@given(st.integers(0, 12), st.lists(names, max_size=5), st.integers(-(2**31), 2**31 - 1))
def test_metadata_response_round_trip(version: int, topics: list[str], node: int) -> None:
    body = {
        "brokers": [{"node_id": node, "host": "h", "port": 1}],
        "topics": [
            {"name": t, "partitions": [{"partition_index": 0, "leader_id": node}]} for t in topics
        ],
    }
    frame = encode_response(3, version, 1, body)
    entity_type = response_type(3, version)
    header_len = 5 if entity_type.__flexible__ else 4
    decoded, _ = entity_reader(entity_type)(memoryview(frame[4:]), header_len)
    assert [t.name for t in decoded.topics] == topics
    assert decoded.brokers[0].node_id == node
    assert decoded == to_entity(entity_type, body)


@given(st.binary(max_size=64))
def test_garbage_never_raises_anything_but_protocol_error(data: bytes) -> None:
    frame = struct.pack(">hhi", 3, 12, 1) + data
    with contextlib.suppress(ProtocolError):
        decode_request(frame)
