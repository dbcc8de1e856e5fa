"""``headwater registry``: run the schema registry in the foreground."""

from __future__ import annotations

import signal
import threading
from typing import Annotated

import typer

from headwater.cli._common import fail

# The registry's own topic name; headwater.registry (starlette, uvicorn, fastavro) is imported
# only when the command runs.
SCHEMAS_TOPIC = "_schemas"


def registry(
    host: Annotated[
        str,
        typer.Option(help="Address the REST API listens on.", envvar="HEADWATER_REGISTRY_HOST"),
    ] = "127.0.0.1",
    port: Annotated[
        int,
        typer.Option(
            help="TCP port of the REST API (8081 is Confluent's); 0 picks a free port.",
            envvar="HEADWATER_REGISTRY_PORT",
        ),
    ] = 8081,
    bootstrap: Annotated[
        str,
        typer.Option(
            "--bootstrap",
            "-b",
            help="Kafka bootstrap servers holding the schemas topic; any Kafka-compatible cluster.",
            envvar="HEADWATER_BOOTSTRAP",
        ),
    ] = "127.0.0.1:9092",
    topic: Annotated[
        str,
        typer.Option(
            help="Compacted topic that stores every schema, config and mode (created if missing).",
            envvar="HEADWATER_REGISTRY_TOPIC",
        ),
    ] = SCHEMAS_TOPIC,
) -> None:
    """Serve a Confluent-compatible schema registry whose state lives in a Kafka topic.

    Run one writing instance per topic; more instances may serve reads from the same topic.
    """
    from headwater.registry import RegistryServer

    server = RegistryServer(bootstrap, host, port, topic=topic)
    try:
        server.start()
    except Exception as exc:
        raise fail(
            f"registry could not start: {exc}; is a broker reachable at {bootstrap}?"
        ) from None
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    typer.echo(f"ready on {server.url}", err=True)
    try:
        stop.wait()
    finally:
        server.stop()
