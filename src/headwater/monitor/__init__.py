"""Consumer-lag evaluation: how far each group trails its partitions, and when to worry.

``consumer_lag`` takes one reading; ``LagMonitor`` samples in a background thread, keeps the
latest reading for the dashboard and raises an alert when a group's lag stays above a
threshold. Everything goes through ``headwater.client``, so it works against any
Kafka-compatible cluster.
"""

from headwater.monitor._alerts import LagAlert, LagThreshold
from headwater.monitor._lag import (
    GroupLag,
    LagError,
    LagReader,
    PartitionLag,
    consumer_lag,
    is_internal_group,
    lag_snapshot,
)
from headwater.monitor._monitor import LagMonitor

__all__ = [
    "GroupLag",
    "LagAlert",
    "LagError",
    "LagMonitor",
    "LagReader",
    "LagThreshold",
    "PartitionLag",
    "consumer_lag",
    "is_internal_group",
    "lag_snapshot",
]
