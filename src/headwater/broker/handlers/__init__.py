"""One module per API family; importing this package registers every handler."""

from headwater.broker.handlers import (
    admin,
    api_versions,
    configs,
    consumer_groups,
    describe_topic_partitions,
    fetch,
    groups,
    metadata,
    offsets,
    produce,
    transactions,
)

__all__ = [
    "admin",
    "api_versions",
    "configs",
    "consumer_groups",
    "describe_topic_partitions",
    "fetch",
    "groups",
    "metadata",
    "offsets",
    "produce",
    "transactions",
]
