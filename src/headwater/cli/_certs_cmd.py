"""``headwater certs``: development certificates for TLS and mutual-TLS listeners."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from headwater.cli._common import fail

if TYPE_CHECKING:
    from headwater.security._certs import CertBundle

DEFAULT_HOSTS = ("localhost", "127.0.0.1")

app = typer.Typer(
    help="Create certificates for trying TLS locally (not for production).", no_args_is_help=True
)


@app.command("create")
def create(
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            "-o",
            metavar="DIR",
            help="Folder to write the PEM files to; created if missing.",
            file_okay=False,
        ),
    ] = Path("headwater-certs"),
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            metavar="HOST",
            help="DNS name or IP address clients use to reach the broker, put in the server "
            "certificate; repeat for several (default: localhost and 127.0.0.1).",
        ),
    ] = None,
    client: Annotated[
        list[str] | None,
        typer.Option(
            "--client",
            metavar="NAME",
            help="Also issue a client certificate with this common name, for "
            "ssl_client_auth=required; repeat for several.",
        ),
    ] = None,
    days: Annotated[
        int, typer.Option("--days", min=1, metavar="DAYS", help="Days the certificates stay valid.")
    ] = 365,
    force: Annotated[
        bool,
        typer.Option("--force", help="Overwrite certificates and keys already in the folder."),
    ] = False,
) -> None:
    """Write a private CA, a server certificate and client certificates as PEM files."""
    try:
        # Imported here: cryptography is large, and every other command starts without it.
        from headwater.security._certs import BundleExistsError, write_bundle

        bundle = write_bundle(
            out, hosts=host or DEFAULT_HOSTS, clients=client or (), days=days, overwrite=force
        )
    except BundleExistsError as exc:
        names = ", ".join(path.name for path in exc.paths)
        raise fail(f"{names} already exist in {out}; pass --force to replace them") from None
    except ValueError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write certificates to {out}: {exc.strerror or exc}") from None
    typer.echo(_summary(bundle, host or list(DEFAULT_HOSTS)))


def _summary(bundle: CertBundle, hosts: list[str]) -> str:
    lines = [f"wrote {path}" for path in bundle.paths()]
    lines += [
        "",
        f"The server certificate is valid for {', '.join(hosts)}. Keep the *.key files private.",
        "",
        "Broker ([broker] table of its TOML config; the flags are --ssl-certfile and so on):",
        f'  listeners = "SSL://{_listen_host(hosts)}:9093"',
        f'  ssl_certfile = "{bundle.server_certfile.resolve()}"',
        f'  ssl_keyfile = "{bundle.server_keyfile.resolve()}"',
        f'  ssl_cafile = "{bundle.ca_certfile.resolve()}"',
        f'  ssl_client_auth = "{"required" if bundle.clients else "none"}"',
        "",
        "Clients (librdkafka: confluent-kafka, kcat, headwater; properties as Kafka writes them):",
        "  security.protocol=SSL",
        f"  ssl.ca.location={bundle.ca_certfile.resolve()}",
    ]
    for files in bundle.clients[:1]:
        lines += [
            f"  ssl.certificate.location={files.certfile.resolve()}",
            f"  ssl.key.location={files.keyfile.resolve()}",
        ]
    lines += [
        "",
        "Java clients:",
        "  security.protocol=SSL",
        "  ssl.truststore.type=PEM",
        f"  ssl.truststore.location={bundle.ca_certfile.resolve()}",
    ]
    for files in bundle.clients[:1]:
        lines += ["  ssl.keystore.type=PEM", f"  ssl.keystore.location={files.keystore.resolve()}"]
    if len(bundle.clients) > 1:
        lines += ["", "Other clients use their own NAME.pem, NAME.key and NAME.keystore.pem."]
    return "\n".join(lines)


def _listen_host(hosts: list[str]) -> str:
    return "127.0.0.1" if "127.0.0.1" in hosts or "localhost" in hosts else "0.0.0.0"
