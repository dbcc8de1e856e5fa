"""``headwater registry``: run the schema registry in the foreground."""

from __future__ import annotations

import signal
import threading
from pathlib import Path
from typing import Annotated

import typer

from headwater.cli._common import fail
from headwater.cli._http_options import basic_auth, check_tls

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
    ssl_certfile: Annotated[
        Path | None,
        typer.Option(
            help="Serve HTTPS with this PEM certificate chain (with --ssl-keyfile); "
            "`headwater certs create` writes development ones.",
            envvar="HEADWATER_REGISTRY_SSL_CERTFILE",
        ),
    ] = None,
    ssl_keyfile: Annotated[
        Path | None,
        typer.Option(
            help="The PEM private key of --ssl-certfile.",
            envvar="HEADWATER_REGISTRY_SSL_KEYFILE",
        ),
    ] = None,
    users_file: Annotated[
        Path | None,
        typer.Option(
            help="Require HTTP Basic authentication against the broker's SCRAM users in this "
            "file (<broker data dir>/__meta/scram-credentials.json); user changes apply at "
            "the next request.",
            envvar="HEADWATER_REGISTRY_USERS_FILE",
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="The broker's data directory: like --users-file with the file found in it.",
            envvar="HEADWATER_REGISTRY_DATA_DIR",
        ),
    ] = None,
    read_write_user: Annotated[
        list[str] | None,
        typer.Option(
            metavar="NAME",
            help="A user who may register and delete schemas and change configs (repeatable); "
            "every other user may only read.",
            envvar="HEADWATER_REGISTRY_READ_WRITE_USERS",
        ),
    ] = None,
) -> None:
    """Serve a Confluent-compatible schema registry whose state lives in a Kafka topic.

    Run one writing instance per topic; more instances may serve reads from the same topic.
    """
    check_tls(ssl_certfile, ssl_keyfile)
    auth = basic_auth(users_file, data_dir, read_write_user, realm="headwater-registry")
    from headwater.registry import RegistryServer

    server = RegistryServer(
        bootstrap,
        host,
        port,
        topic=topic,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        auth=auth,
    )
    try:
        server.start()
    except ValueError as exc:
        raise fail(f"registry could not start: {exc}") from None
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
