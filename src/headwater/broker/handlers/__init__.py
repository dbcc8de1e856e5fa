"""One module per API family; importing this package registers every handler."""

from headwater.broker.handlers import (
    acls,
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
    quotas,
    sasl,
    scram_credentials,
    transactions,
)

__all__ = [
    "acls",
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
    "quotas",
    "sasl",
    "scram_credentials",
    "transactions",
]
