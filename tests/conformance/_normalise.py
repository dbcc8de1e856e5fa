"""What legitimately differs between two brokers, taken out before answers are compared.

Cluster and topic ids, node ids, addresses, producer and member ids, append times and throttle
times are chosen by each broker; free-text error messages are each broker's own prose. Their
*presence* still counts: a field one broker sends and the other lacks is a difference.
"""

from __future__ import annotations

from typing import Any

# Field name -> placeholder shown instead of the value (when the value is set at all).
_HIDDEN = {
    "cluster_id": "<cluster id>",
    "topic_id": "<topic id>",
    "node_id": "<node>",
    "broker_id": "<node>",
    "leader_id": "<node>",
    "controller_id": "<node>",
    "replica_nodes": "<nodes>",
    "isr_nodes": "<nodes>",
    "host": "<host>",
    "port": "<port>",
    "producer_id": "<producer id>",
    "member_id": "<member id>",
    "leader": "<member id>",
    "log_append_time": "<time>",
    "transaction_start_time": "<time>",
    "client_host": "<host>",
    "client_id": "<client id>",
}
# Fields left out entirely: never the same twice, or prose.
_DROPPED = {
    "throttle_time",
    "throttle_time_ms",
    "error_message",
    "batch_index_error_message",
    "documentation",
}
_UNSET = (None, -1, "", [])


def normalise(value: Any, aliases: dict[str, str]) -> Any:
    """``value`` with broker-chosen values replaced by placeholders and generated names
    (topics, groups, transactional ids) replaced by their stems."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if key in _DROPPED:
                continue
            if key in _HIDDEN and item not in _UNSET:
                out[key] = _HIDDEN[key]
            else:
                out[key] = normalise(item, aliases)
        return out
    if isinstance(value, list):
        return [normalise(v, aliases) for v in value]
    if isinstance(value, str):
        for full, stem in aliases.items():
            if full in value:
                value = value.replace(full, stem)
        return value
    return value
