"""Our face over confluent-kafka: profiles with safe defaults, serializers, retries with
backoff, dead-letter topics, lineage headers, typed helpers, and a small request client for the
transactions admin APIs confluent-kafka lacks.

This is the only package that imports confluent_kafka; the rest of headwater uses the names
re-exported here, so it runs unchanged against any Kafka-compatible cluster.
"""

from typing import TYPE_CHECKING, Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from headwater.client._acl_admin import AclAdmin, describe_binding
from headwater.client._admin import Admin, AdminError, GroupOffsets, TopicInfo
from headwater.client._backoff import Backoff
from headwater.client._bounded import BoundedCalls, CallStuck
from headwater.client._cluster import ClusterMetadata, PartitionState, describe_cluster
from headwater.client._dlq import DeadLetterQueue, dead_letter_headers
from headwater.client._factories import new_consumer, new_producer
from headwater.client._inspect import (
    ClusterSettings,
    ConfigValue,
    InspectError,
    TopicSettings,
    inspect_cluster,
)
from headwater.client._io import ConsumedRecord, DeliveryError, consume, produce_all
from headwater.client._lineage import add_lineage, lineage_headers, read_lineage
from headwater.client._offsets import (
    committed_offsets,
    is_transient,
    read_to_end,
    watermarks,
)
from headwater.client._producer import Delivery, EventProducer, ProducerStats
from headwater.client._profiles import (
    CONSUMER_DEFAULTS,
    PRODUCER_PROFILES,
    consumer_config,
    producer_config,
)
from headwater.client._quota_admin import QuotaAdmin, QuotaAdminError, QuotaEntry
from headwater.client._replication import (
    Replication,
    ReplicationError,
    cluster_replication,
    replication_for,
)
from headwater.client._scram_admin import ScramUsers
from headwater.client._security import (
    ClientConfigError,
    client_security,
    read_client_properties,
    set_client_security,
    with_security,
)
from headwater.client._serde import (
    BytesSerde,
    JsonSerde,
    Serde,
    SerdeError,
    StringSerde,
    deserialize_many,
    serde,
    serialize_many,
)

__all__ = [
    "CONSUMER_DEFAULTS",
    "OFFSET_BEGINNING",
    "OFFSET_END",
    "PRODUCER_PROFILES",
    "AclAdmin",
    "Admin",
    "AdminError",
    "AvroSerde",
    "Backoff",
    "BoundedCalls",
    "BytesSerde",
    "CallStuck",
    "ClientConfigError",
    "ClusterMetadata",
    "ClusterSettings",
    "ConfigValue",
    "ConsumedRecord",
    "Consumer",
    "DeadLetterQueue",
    "Delivery",
    "DeliveryError",
    "EventProducer",
    "GroupOffsets",
    "InspectError",
    "JsonSchemaSerde",
    "JsonSerde",
    "KafkaError",
    "KafkaException",
    "Message",
    "PartitionState",
    "Producer",
    "ProducerState",
    "ProducerStats",
    "ProtobufSerde",
    "QuotaAdmin",
    "QuotaAdminError",
    "QuotaEntry",
    "Replication",
    "ReplicationError",
    "ScramUsers",
    "Serde",
    "SerdeError",
    "StringSerde",
    "TopicInfo",
    "TopicPartition",
    "TopicSettings",
    "TopicTable",
    "TopicTableError",
    "TransactionAdmin",
    "TransactionDescription",
    "TransactionListing",
    "WireError",
    "add_lineage",
    "client_security",
    "cluster_replication",
    "committed_offsets",
    "consume",
    "consumer_config",
    "dead_letter_headers",
    "describe_binding",
    "describe_cluster",
    "deserialize_many",
    "inspect_cluster",
    "is_transient",
    "lineage_headers",
    "new_consumer",
    "new_producer",
    "produce_all",
    "producer_config",
    "read_client_properties",
    "read_lineage",
    "read_to_end",
    "replication_for",
    "serde",
    "serialize_many",
    "set_client_security",
    "watermarks",
    "with_security",
]

if TYPE_CHECKING:
    from headwater.client._schema_serde import AvroSerde, JsonSchemaSerde, ProtobufSerde
    from headwater.client._topic_table import TopicTable, TopicTableError
    from headwater.client._txn_admin import (
        ProducerState,
        TransactionAdmin,
        TransactionDescription,
        TransactionListing,
    )
    from headwater.client._wire import WireError

# Loaded on first use: the schema-registry client stack (httpx, authlib, fastavro, protobuf)
# costs tens of megabytes that a plain producer or the CLI should not pay, and the
# transactions admin brings kio's schemas, which only its commands need.
_LAZY = {
    "AvroSerde": "headwater.client._schema_serde",
    "JsonSchemaSerde": "headwater.client._schema_serde",
    "ProtobufSerde": "headwater.client._schema_serde",
    "TopicTable": "headwater.client._topic_table",
    "TopicTableError": "headwater.client._topic_table",
    "ProducerState": "headwater.client._txn_admin",
    "TransactionAdmin": "headwater.client._txn_admin",
    "TransactionDescription": "headwater.client._txn_admin",
    "TransactionListing": "headwater.client._txn_admin",
    "WireError": "headwater.client._wire",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'headwater.client' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
