"""Broker settings: one dataclass, filled from defaults, a TOML file, env vars and flags.

Precedence, lowest first: built-in defaults, the TOML file, ``HEADWATER_*`` environment
variables, explicit command-line flags. Every bound the broker enforces is named here.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from headwater.broker._consumer_assignors import ASSIGNORS
from headwater.broker._listeners import Listener, parse_advertised, parse_listeners

FSYNC_POLICIES = ("acks-all", "always", "never")
CONSUMER_ASSIGNORS = tuple(ASSIGNORS)
SASL_MECHANISMS = ("SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN")
SSL_CLIENT_AUTH = ("none", "requested", "required")


@dataclasses.dataclass(slots=True)
class BrokerConfig:
    """Everything a broker needs to start; defaults match a laptop-friendly single node."""

    host: str = "127.0.0.1"
    port: int = 9092
    data_dir: Path = Path("headwater-data")
    advertised_host: str | None = None
    advertised_port: int | None = None
    node_id: int = 1
    cluster_id: str = "headwater"
    auto_create_topics: bool = True
    num_partitions: int = 1
    # fsync: "acks-all" answers acks=all produces after an fsync (group commit) and acks=1
    # after the write; "always" fsyncs before every acknowledgement; "never" leaves it to the OS.
    fsync_policy: str = "acks-all"
    message_max_bytes: int = 1_048_588
    frame_bytes_max: int = 100 * 1024 * 1024
    # Bytes of requests held at once, received or in flight, over all connections (Kafka's
    # queued.max.request.bytes); must be at least frame_bytes_max.
    queued_request_bytes_max: int = 256 * 1024 * 1024
    inflight_requests_max: int = 128
    connections_max: int = 1024
    # A connection with no request in flight that sends nothing for this long is closed.
    connections_max_idle_ms: int = 600_000
    fetch_bytes_max: int = 55 * 1024 * 1024
    group_initial_rebalance_delay_ms: int = 0
    group_max_size: int = 1000
    group_min_session_timeout_ms: int = 1000
    group_max_session_timeout_ms: int = 1_800_000
    # KIP-848 consumer groups (group.consumer.*): the broker, not the client, sets the session
    # timeout and heartbeat interval; min/max bound them as Kafka's settings do. Kafka leaves
    # group.consumer.max.size unbounded; here it is as bounded as group_max_size.
    group_consumer_session_timeout_ms: int = 45_000
    group_consumer_min_session_timeout_ms: int = 45_000
    group_consumer_max_session_timeout_ms: int = 60_000
    group_consumer_heartbeat_interval_ms: int = 5_000
    group_consumer_min_heartbeat_interval_ms: int = 5_000
    group_consumer_max_heartbeat_interval_ms: int = 15_000
    group_consumer_max_size: int = 1000
    # Server-side assignors offered to members; the first is the default.
    group_consumer_assignors: list[str] = dataclasses.field(
        default_factory=lambda: ["uniform", "range"]
    )
    retention_check_interval_ms: int = 30_000
    # Broker-wide defaults for topic configs, e.g. {"retention.ms": "3600000"}.
    topic_defaults: dict[str, str] = dataclasses.field(default_factory=dict)
    # Serve Prometheus metrics on http://host:metrics_port/metrics; None turns it off.
    metrics_port: int | None = None
    # HTTPS for /metrics (PEM files), and HTTP Basic authentication against the SCRAM users.
    metrics_ssl_certfile: Path | None = None
    metrics_ssl_keyfile: Path | None = None
    metrics_basic_auth: bool = False
    # Listeners as Kafka writes them: "PLAINTEXT://127.0.0.1:9092,SASL_SSL://0.0.0.0:9093".
    # Empty means one PLAINTEXT listener on host:port (and advertised_host/port).
    listeners: str = ""
    advertised_listeners: str = ""
    listener_security_protocol_map: str = ""
    # TLS for SSL and SASL_SSL listeners (PEM files); ssl_client_auth as Kafka's.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_key_password: str | None = None
    ssl_cafile: Path | None = None
    ssl_client_auth: str = "none"
    ssl_principal_mapping_rules: str = "DEFAULT"
    # A TLS handshake not finished by then closes its connection, so clients that connect
    # and never handshake cannot hold sockets for long.
    ssl_handshake_timeout_ms: int = 10_000
    sasl_enabled_mechanisms: list[str] = dataclasses.field(
        default_factory=lambda: list(SASL_MECHANISMS)
    )
    # KIP-368: an authenticated session lasts this long, then the client must re-authenticate
    # or its connection is closed; 0 lets sessions last as long as their connection.
    connections_max_reauth_ms: int = 0
    # Largest frame accepted before authentication completes (Kafka's
    # sasl.server.max.receive.size), so an unauthenticated peer cannot make the broker buffer
    # frame_bytes_max.
    sasl_server_max_receive_size: int = 524_288
    # A failed authentication is answered after this delay, then the connection is closed.
    connection_failed_authentication_delay_ms: int = 100
    # Secure by default: a listener reachable from other machines must authenticate its
    # clients (SASL, or SSL with ssl_client_auth=required) unless this is set.
    allow_anonymous: bool = False
    # Kafka's authorizer.class.name: enforce the ACLs (off: every client may do everything),
    # super.users (principals that bypass them) and allow.everyone.if.no.acl.found.
    authorizer_enabled: bool = False
    super_users: list[str] = dataclasses.field(default_factory=list)
    allow_everyone_if_no_acl_found: bool = False
    # Audit log (docs/security.md "Audit log"): one CloudEvent JSON line per authentication,
    # authorisation refusal and admin change, in <audit_log_dir or data_dir/audit>/audit.log.
    audit_log_enabled: bool = False
    audit_log_dir: Path | None = None
    audit_log_bytes_max: int = 100 * 1024 * 1024
    audit_log_files_max: int = 10
    # Also append every record to the internal topic __audit (needs audit_log_enabled).
    audit_topic_enabled: bool = False
    # Test-only fault hooks: never enable in production.
    fault_hooks: bool = False
    # Test-only: write sample request frames here, the request fuzzer's seed corpus.
    frame_capture_dir: Path | None = None

    @property
    def advertised(self) -> tuple[str, int]:
        return (self.advertised_host or self.host, self.advertised_port or self.port)

    def listener_list(self) -> list[Listener]:
        """The listeners to bind: ``listeners``, or one PLAINTEXT listener on host:port."""
        if not self.listeners.strip():
            return [Listener("PLAINTEXT", "PLAINTEXT", self.host, self.port)]
        return parse_listeners(self.listeners, self.listener_security_protocol_map)

    def advertised_map(self) -> dict[str, tuple[str, int]]:
        """Per listener name, the advertised (host, port); port 0 means the bound port."""
        listeners = self.listener_list()
        if not self.listeners.strip():
            return {"PLAINTEXT": self.advertised}
        return parse_advertised(self.advertised_listeners, listeners)

    def validate(self) -> None:
        """Reject settings that cannot work, with a message that says which and why."""
        if self.fsync_policy not in FSYNC_POLICIES:
            raise ValueError(
                f"fsync_policy={self.fsync_policy!r}: choose one of {', '.join(FSYNC_POLICIES)}"
            )
        for name in (
            "frame_bytes_max",
            "inflight_requests_max",
            "connections_max",
            "connections_max_idle_ms",
            "fetch_bytes_max",
            "message_max_bytes",
            "num_partitions",
        ):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        if self.queued_request_bytes_max < self.frame_bytes_max:
            raise ValueError(
                f"queued_request_bytes_max={self.queued_request_bytes_max} is below "
                f"frame_bytes_max={self.frame_bytes_max}: the largest frame could never be read"
            )
        if not 0 <= self.port <= 65535:
            raise ValueError(f"port {self.port} is not a TCP port")
        self._validate_consumer_groups()
        self._validate_security()
        if self.audit_log_bytes_max < 1024 or self.audit_log_files_max < 1:
            raise ValueError("audit_log_bytes_max must be >= 1024 and audit_log_files_max >= 1")

    def _validate_security(self) -> None:
        listeners = self.listener_list()
        self.advertised_map()
        if self.ssl_client_auth not in SSL_CLIENT_AUTH:
            raise ValueError(
                f"ssl_client_auth={self.ssl_client_auth!r}: choose one of "
                f"{', '.join(SSL_CLIENT_AUTH)}"
            )
        unknown = set(self.sasl_enabled_mechanisms) - set(SASL_MECHANISMS)
        if unknown or not self.sasl_enabled_mechanisms:
            raise ValueError(
                f"sasl_enabled_mechanisms must be some of {', '.join(SASL_MECHANISMS)}, "
                f"got {', '.join(self.sasl_enabled_mechanisms) or 'none'}"
            )
        for name in ("sasl_server_max_receive_size", "ssl_handshake_timeout_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("connections_max_reauth_ms", "connection_failed_authentication_delay_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative, got {getattr(self, name)}")
        for principal in self.super_users:
            if ":" not in principal:
                raise ValueError(
                    f"super_users: {principal!r} is not a principal; write it as Kafka does, "
                    "e.g. User:admin"
                )
        for listener in listeners:
            if listener.tls and (self.ssl_certfile is None or self.ssl_keyfile is None):
                raise ValueError(
                    f"listener {listener} uses TLS: set ssl_certfile and ssl_keyfile "
                    "(`headwater certs create` makes a development pair)"
                )
            if listener.loopback or self.allow_anonymous:
                continue
            authenticated = listener.sasl or (listener.tls and self.ssl_client_auth == "required")
            if not authenticated:
                raise ValueError(
                    f"listener {listener} can be reached from other machines and lets any "
                    "client in without authentication: use a SASL_SSL or SASL_PLAINTEXT "
                    "listener, or SSL with ssl_client_auth=required, or start with "
                    "--allow-anonymous (allow_anonymous = true) if that is what you want"
                )

    def _validate_consumer_groups(self) -> None:
        for what in ("session_timeout_ms", "heartbeat_interval_ms"):
            low = getattr(self, f"group_consumer_min_{what}")
            value = getattr(self, f"group_consumer_{what}")
            high = getattr(self, f"group_consumer_max_{what}")
            if not 0 < low <= value <= high:
                raise ValueError(
                    f"group_consumer_{what}={value} must lie in "
                    f"group_consumer_min_{what}={low} .. group_consumer_max_{what}={high}"
                )
        if self.group_consumer_heartbeat_interval_ms >= self.group_consumer_session_timeout_ms:
            raise ValueError(
                "group_consumer_heartbeat_interval_ms must be less than "
                "group_consumer_session_timeout_ms"
            )
        if self.group_consumer_max_size < 1:
            raise ValueError("group_consumer_max_size must be positive")
        unknown = set(self.group_consumer_assignors) - set(CONSUMER_ASSIGNORS)
        if not self.group_consumer_assignors or unknown:
            raise ValueError(
                f"group_consumer_assignors must be some of {', '.join(CONSUMER_ASSIGNORS)}"
            )


_FIELDS = {f.name: f for f in dataclasses.fields(BrokerConfig)}


def _convert(name: str, value: Any) -> Any:
    kind = type(getattr(BrokerConfig(), name))
    if name in ("advertised_host", "ssl_key_password"):
        return None if value in (None, "") else str(value)
    if name in (
        "ssl_certfile",
        "ssl_keyfile",
        "ssl_cafile",
        "metrics_ssl_certfile",
        "metrics_ssl_keyfile",
        "audit_log_dir",
    ):
        return None if value in (None, "") else Path(value)
    if name in ("advertised_port", "metrics_port"):
        return None if value in (None, "") else int(value)
    if name == "data_dir":
        return Path(value)
    if name == "frame_capture_dir":
        return None if value in (None, "") else Path(value)
    if name in ("group_consumer_assignors", "sasl_enabled_mechanisms"):
        items = value.split(",") if isinstance(value, str) else list(value)
        return [str(item).strip() for item in items if str(item).strip()]
    if name == "super_users":
        # Kafka separates super.users with ";": a certificate principal may hold commas.
        items = value.split(";") if isinstance(value, str) else list(value)
        return [str(item).strip() for item in items if str(item).strip()]
    if name == "topic_defaults":
        if not isinstance(value, Mapping):
            raise ValueError("topic_defaults must be a table of config name = value")
        return {str(k): str(v) for k, v in value.items()}
    if kind is bool:
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("1", "true", "yes", "on")
    return kind(value)


def load_config(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> BrokerConfig:
    """Build a validated BrokerConfig from a TOML file, env vars and explicit overrides."""
    values: dict[str, Any] = {}
    if config_file is not None:
        with config_file.open("rb") as handle:
            data = tomllib.load(handle)
        table = data.get("broker", data)
        for key, value in table.items():
            name = key.replace("-", "_")
            if name not in _FIELDS:
                raise ValueError(f"{config_file}: unknown broker setting {key!r}")
            values[name] = _convert(name, value)
    env = os.environ if environ is None else environ
    for name in _FIELDS:
        raw = env.get(f"HEADWATER_{name.upper()}")
        if raw is not None and name != "topic_defaults":
            values[name] = _convert(name, raw)
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _convert(name, value)
    config = BrokerConfig(**values)
    config.validate()
    return config
