"""``headwater broker``: run the embedded broker in the foreground."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path
from typing import Annotated

import typer

from headwater.broker import Broker, load_config, new_event_loop
from headwater.cli._common import fail


def broker(
    host: Annotated[
        str | None,
        typer.Option(help="Address to listen on [default 127.0.0.1; env HEADWATER_HOST]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(help="TCP port [default 9092; env HEADWATER_PORT]. 0 picks a free port."),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Where logs and metadata live [default ./headwater-data; env HEADWATER_DATA_DIR]."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML file with broker settings (a [broker] table); flags and env win.",
            envvar="HEADWATER_CONFIG",
        ),
    ] = None,
    advertised_host: Annotated[
        str | None, typer.Option(help="Host clients are told to connect to [default: --host].")
    ] = None,
    advertised_port: Annotated[
        int | None, typer.Option(help="Port clients are told to connect to [default: --port].")
    ] = None,
    fsync_policy: Annotated[
        str | None,
        typer.Option(
            help="acks-all (fsync before answering acks=all, the default), always, or never."
        ),
    ] = None,
    auto_create_topics: Annotated[
        bool | None,
        typer.Option(
            "--auto-create-topics/--no-auto-create-topics",
            help="Create unknown topics on produce/metadata, as Kafka does [default on].",
        ),
    ] = None,
    num_partitions: Annotated[
        int | None, typer.Option(help="Partitions of auto-created topics [default 1].")
    ] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            help="Serve Prometheus metrics on http://HOST:PORT/metrics [default off; 0 picks "
            "a free port; env HEADWATER_METRICS_PORT]."
        ),
    ] = None,
    listeners: Annotated[
        str | None,
        typer.Option(
            help="Listeners as Kafka writes them, e.g. 'PLAINTEXT://127.0.0.1:9092,"
            "SASL_SSL://0.0.0.0:9093' (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL) [default one "
            "PLAINTEXT listener on --host:--port; env HEADWATER_LISTENERS]."
        ),
    ] = None,
    advertised_listeners: Annotated[
        str | None,
        typer.Option(
            help="Per listener, the address clients are sent back to, e.g. "
            "'SASL_SSL://broker.example.com:9093' [default: each listener's own address]."
        ),
    ] = None,
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(help="PEM server certificate (chain) for SSL and SASL_SSL listeners."),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None, typer.Option(help="PEM private key of --ssl-certfile.")
    ] = None,
    ssl_cafile: Annotated[
        Path | None,
        typer.Option(help="PEM CA certificates that client certificates must chain to."),
    ] = None,
    ssl_client_auth: Annotated[
        str | None,
        typer.Option(
            help="none, requested or required: ask clients for a certificate (mutual TLS); "
            "its subject becomes the principal [default none]."
        ),
    ] = None,
    connections_max_reauth_ms: Annotated[
        int | None,
        typer.Option(
            help="SASL sessions last this long, then clients must re-authenticate (KIP-368) "
            "[default 0: as long as the connection]."
        ),
    ] = None,
    audit_log: Annotated[
        bool | None,
        typer.Option(
            "--audit-log/--no-audit-log",
            help="Record logins, refusals and admin changes as CloudEvents in "
            "DATA_DIR/audit/audit.log (read it with `headwater audit tail`) [default off].",
        ),
    ] = None,
    allow_anonymous: Annotated[
        bool | None,
        typer.Option(
            "--allow-anonymous",
            help="Allow a listener reachable from other machines to serve clients that did "
            "not authenticate (refused by default).",
        ),
    ] = None,
    authorizer: Annotated[
        bool | None,
        typer.Option(
            "--authorizer/--no-authorizer",
            help="Enforce the ACLs (Kafka's authorizer.class.name); off by default, when every "
            "client may do everything.",
        ),
    ] = None,
    super_user: Annotated[
        list[str] | None,
        typer.Option(
            "--super-user",
            help="A principal that bypasses the ACLs, e.g. User:admin (repeatable; Kafka's "
            "super.users).",
        ),
    ] = None,
    log_level: Annotated[str, typer.Option(help="DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Start the broker; any Kafka client can connect to it. Ctrl-C stops it cleanly."""
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    try:
        settings = load_config(
            config,
            {
                "host": host,
                "port": port,
                "data_dir": data_dir,
                "advertised_host": advertised_host,
                "advertised_port": advertised_port,
                "fsync_policy": fsync_policy,
                "auto_create_topics": auto_create_topics,
                "num_partitions": num_partitions,
                "metrics_port": metrics_port,
                "listeners": listeners,
                "advertised_listeners": advertised_listeners,
                "ssl_certfile": ssl_certfile,
                "ssl_keyfile": ssl_keyfile,
                "ssl_cafile": ssl_cafile,
                "ssl_client_auth": ssl_client_auth,
                "connections_max_reauth_ms": connections_max_reauth_ms,
                "allow_anonymous": allow_anonymous,
                "audit_log_enabled": audit_log,
                "authorizer_enabled": authorizer,
                "super_users": super_user or None,
            },
        )
    except (OSError, ValueError) as exc:
        raise fail(f"bad broker configuration: {exc}") from None
    try:
        with asyncio.Runner(loop_factory=new_event_loop) as runner:
            runner.run(_serve(settings))
    except OSError as exc:
        raise fail(f"cannot start the broker: {exc}. Is the port already in use?") from None


async def _serve(settings: object) -> None:
    try:
        server = Broker(settings)  # type: ignore[arg-type]
    except ValueError as exc:
        raise fail(f"bad broker configuration: {exc}") from None
    await server.start()
    host, port = server.advertised
    if server.metrics_server is not None:
        typer.echo(
            f"metrics on http://{server.config.host}:{server.metrics_server.port}/metrics",
            err=True,
        )
    for listener in server.listeners[1:]:
        other_host, other_port = server.advertised_for(listener.name)
        typer.echo(f"listener {listener.name} on {other_host}:{other_port}", err=True)
    typer.echo(
        f"headwater broker ready on {host}:{port} (data in {server.config.data_dir})", err=True
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await server.close()
        typer.echo("headwater broker stopped", err=True)
