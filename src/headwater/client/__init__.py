"""Our face over confluent-kafka: profiles with safe defaults and typed helpers.

This is the only package that imports confluent_kafka.
"""

from headwater.client._admin import Admin, AdminError, GroupOffsets, TopicInfo
from headwater.client._io import ConsumedRecord, DeliveryError, consume, produce_all
from headwater.client._profiles import (
    CONSUMER_DEFAULTS,
    PRODUCER_PROFILES,
    consumer_config,
    producer_config,
)

__all__ = [
    "CONSUMER_DEFAULTS",
    "PRODUCER_PROFILES",
    "Admin",
    "AdminError",
    "ConsumedRecord",
    "DeliveryError",
    "GroupOffsets",
    "TopicInfo",
    "consume",
    "consumer_config",
    "produce_all",
    "producer_config",
]
