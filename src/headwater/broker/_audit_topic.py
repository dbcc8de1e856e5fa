"""The ``__audit`` topic: every audit record also appended to a topic of this broker, so the
audit trail can be consumed (shipped to a SIEM, kept in a sink) like any other stream.

The records are appended straight to the topic's log on the event loop, as the transaction
coordinator writes its markers: one small batch per record, no producer in between. The
topic is created at start, marked internal; with the authorizer on only principals granted
READ on it (or super users) can consume it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from headwater.protocol import NewRecord, build_batch, split_batches

if TYPE_CHECKING:
    from headwater.broker._server import Broker

log = logging.getLogger(__name__)

AUDIT_TOPIC = "__audit"
# A week by default, like any topic; operators change it as for any topic (AlterConfigs).
_CONFIGS = {"cleanup.policy": "delete"}


def ensure_audit_topic(broker: Broker) -> None:
    """Create ``__audit`` (one partition) if this broker does not have it yet."""
    if AUDIT_TOPIC not in broker.topics.topics:
        broker.topics.create(AUDIT_TOPIC, 1, dict(_CONFIGS), broker.now_ms(), internal=True)


class AuditTopicSink:
    """``AuditLog``'s topic sink: one JSON line in, one record appended to ``__audit``."""

    def __init__(self, broker: Broker) -> None:
        self._broker = broker

    def __call__(self, line: bytes) -> None:
        topic = self._broker.topics.topics.get(AUDIT_TOPIC)
        if topic is None:
            return  # deleted by an administrator: the file still has the record
        partition = topic.partitions[0]
        now_ms = self._broker.now_ms()
        batch = build_batch([NewRecord(None, line.rstrip(b"\n"), now_ms)])
        partition.log.append(batch, split_batches(batch), now_ms=now_ms)
        partition.notify()
