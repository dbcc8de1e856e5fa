"""Public test helpers: an embedded broker on a free loopback port, in-thread or as a process,
an Apache Kafka cluster of JVM nodes, Java programs on Kafka's jars, and headless Chromium.

Users' own tests can start a real broker in a fixture the same way ours do.
"""

from headwater.testing._brokers import BrokerProcess, embedded_broker
from headwater.testing._browser import BrowserError, chromium_path, render
from headwater.testing._java import (
    JavaError,
    JavaProcess,
    JavaResult,
    java_classpath,
    java_missing,
    run_java,
)
from headwater.testing._kafka import (
    KAFKA_VERSION,
    KafkaCluster,
    KafkaClusterError,
    kafka_libs_dir,
)
from headwater.testing._postgres import PostgresServer, postgres_server

__all__ = [
    "KAFKA_VERSION",
    "BrokerProcess",
    "BrowserError",
    "JavaError",
    "JavaProcess",
    "JavaResult",
    "KafkaCluster",
    "KafkaClusterError",
    "PostgresServer",
    "chromium_path",
    "embedded_broker",
    "java_classpath",
    "java_missing",
    "kafka_libs_dir",
    "postgres_server",
    "render",
    "run_java",
]
