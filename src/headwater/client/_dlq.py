"""Dead-letter topics: records that repeatedly fail are parked with the reason, never dropped.

The dead-letter record keeps the original key and value bytes and adds headers that say what
went wrong and where the record came from, so it can be inspected and replayed later.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

ERROR = "hw.dlq.error"
ERROR_TYPE = "hw.dlq.error_type"
SOURCE_TOPIC = "hw.dlq.topic"
SOURCE_PARTITION = "hw.dlq.partition"
SOURCE_OFFSET = "hw.dlq.offset"
FAILED_AT = "hw.dlq.timestamp"
STAGE = "hw.dlq.stage"
STACK = "hw.dlq.stack"


def _attr(source: Any, name: str) -> Any:
    """Read ``name`` from a confluent Message (methods) or a plain record (attributes)."""
    value = getattr(source, name, None)
    return value() if callable(value) else value


class DeadLetterQueue:
    """Sends failed records to one dead-letter topic through an existing producer."""

    def __init__(self, producer: Producer, topic: str, stage: str) -> None:
        self.producer = producer
        self.topic = topic
        self.stage = stage
        self.sent = 0
        self.failures: list[str] = []

    def send(
        self,
        source: Message | Any,
        error: BaseException | str,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
    ) -> None:
        """Park ``source`` (a consumed Message or a record with topic/partition/offset/key/value).

        ``key``/``value`` override the bytes taken from ``source`` (use them when the record has
        already been deserialized and the original bytes are at hand).
        """
        headers = dead_letter_headers(
            error,
            stage=self.stage,
            topic=_attr(source, "topic") or "",
            partition=_attr(source, "partition"),
            offset=_attr(source, "offset"),
        )
        original = _attr(source, "headers") or []
        pairs = original.items() if isinstance(original, dict) else original
        carried = [(name, raw) for name, raw in pairs if not name.startswith("hw.dlq.")]
        raw_key = key if key is not None else _as_bytes(_attr(source, "key"))
        raw_value = value if value is not None else _as_bytes(_attr(source, "value"))
        while True:
            try:
                self.producer.produce(
                    self.topic,
                    key=raw_key,
                    value=raw_value,
                    headers=carried + headers,
                    on_delivery=self._on_delivery,
                )
                break
            except BufferError:
                self.producer.poll(0.05)
        self.sent += 1

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failures.append(err.str())


def _as_bytes(value: Any) -> bytes | None:
    if value is None or isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    return repr(value).encode()


def dead_letter_headers(
    error: BaseException | str,
    *,
    stage: str,
    topic: str,
    partition: int | None,
    offset: int | None,
) -> list[tuple[str, bytes]]:
    """Headers describing why and where a record failed."""
    if isinstance(error, BaseException):
        message = str(error) or type(error).__name__
        kind = type(error).__name__
        stack = "".join(traceback.format_exception(error)[-3:])
    else:
        message, kind, stack = error, "Error", ""
    headers = [
        (ERROR, message.encode()),
        (ERROR_TYPE, kind.encode()),
        (SOURCE_TOPIC, topic.encode()),
        (SOURCE_PARTITION, str(-1 if partition is None else partition).encode()),
        (SOURCE_OFFSET, str(-1 if offset is None else offset).encode()),
        (FAILED_AT, str(int(time.time() * 1000)).encode()),
        (STAGE, stage.encode()),
    ]
    if stack:
        headers.append((STACK, stack[-2000:].encode()))
    return headers
