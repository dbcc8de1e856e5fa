"""``headwater contracts apply|check``: make topics match their contracts, or report drift."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from headwater.cli._common import Bootstrap, fail

if TYPE_CHECKING:
    from headwater.client._registry_access import RegistryAccess

app = typer.Typer(help="Data contracts: one YAML file per topic.", no_args_is_help=True)

Files = Annotated[list[Path], typer.Argument(help="Contract files (YAML), one per topic.")]
RegistryUrl = Annotated[
    str,
    typer.Option(
        "--registry",
        help="Schema registry URL.",
        envvar="HEADWATER_REGISTRY_URL",
    ),
]
RegistryAuth = Annotated[
    str | None,
    typer.Option(
        "--registry-auth",
        metavar="USER:PASSWORD",
        help="HTTP Basic credentials for a registry that requires them.",
        envvar="HEADWATER_REGISTRY_AUTH",
    ),
]
RegistryCa = Annotated[
    Path | None,
    typer.Option(
        "--registry-ca",
        help="PEM CA certificates the registry's HTTPS certificate must chain to.",
        envvar="HEADWATER_REGISTRY_CA",
    ),
]


def _access(auth: str | None, ca: Path | None) -> RegistryAccess:
    from headwater.client._registry_access import RegistryAccess

    try:
        return RegistryAccess(auth, None if ca is None else str(ca))
    except ValueError as exc:
        raise fail(str(exc)) from None


@app.command("apply")
def apply_cmd(
    files: Files,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    registry: RegistryUrl = "http://127.0.0.1:8081",
    registry_auth: RegistryAuth = None,
    registry_ca: RegistryCa = None,
) -> None:
    """Create or update each topic, set its compatibility, register its schema and turn on
    broker-side validation, as its contract says."""
    from headwater.governance import ContractError, apply, load

    access = _access(registry_auth, registry_ca)

    for path in files:
        try:
            actions = apply(load(path), bootstrap, registry, access=access)
        except ContractError as exc:
            raise fail(str(exc)) from None
        for action in actions:
            typer.echo(f"{path}: {action}")


@app.command("check")
def check_cmd(
    files: Files,
    bootstrap: Bootstrap = "127.0.0.1:9092",
    registry: RegistryUrl = "http://127.0.0.1:8081",
    registry_auth: RegistryAuth = None,
    registry_ca: RegistryCa = None,
) -> None:
    """Report where topics or schemas differ from their contracts; exit 1 on any drift."""
    from headwater.governance import ContractError, check, load

    access = _access(registry_auth, registry_ca)

    drifted = False
    for path in files:
        try:
            drift = check(load(path), bootstrap, registry, access=access)
        except ContractError as exc:
            raise fail(str(exc)) from None
        for line in drift:
            typer.echo(f"{path}: drift: {line}")
        if not drift:
            typer.echo(f"{path}: matches its contract")
        drifted = drifted or bool(drift)
    if drifted:
        raise typer.Exit(1)
