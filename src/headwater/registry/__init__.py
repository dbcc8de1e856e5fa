"""Schema registry: a Confluent-compatible REST service whose state lives in ``_schemas``.

Avro, JSON Schema and Protobuf schemas with compatibility levels checked as Confluent checks
them; any number of instances rebuild the same state from the topic.
"""

from headwater.registry._compat import LEVELS, can_read, check
from headwater.registry._errors import RegistryError
from headwater.registry._formats import SCHEMA_TYPES, Parsed, SchemaParseError, parse
from headwater.registry._server import RegistryServer
from headwater.registry._service import Registry
from headwater.registry._state import SCHEMAS_TOPIC, Reference, RegistryState, SchemaVersion

__all__ = [
    "LEVELS",
    "SCHEMAS_TOPIC",
    "SCHEMA_TYPES",
    "Parsed",
    "Reference",
    "Registry",
    "RegistryError",
    "RegistryServer",
    "RegistryState",
    "SchemaParseError",
    "SchemaVersion",
    "can_read",
    "check",
    "parse",
]
