"""The embedded single-node broker that speaks the Kafka wire protocol."""

from headwater.broker._config import BrokerConfig, load_config
from headwater.broker._loop import new_event_loop
from headwater.broker._server import Broker
from headwater.broker._thread import BrokerThread
from headwater.broker._topic_config import TOPIC_CONFIGS

__all__ = [
    "TOPIC_CONFIGS",
    "Broker",
    "BrokerConfig",
    "BrokerThread",
    "load_config",
    "new_event_loop",
]
