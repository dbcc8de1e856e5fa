"""``headwater users add|remove|list``: the SCRAM users the broker authenticates.

Over the wire by default (AlterUserScramCredentials, so it works against Apache Kafka too), or
straight into a broker's data folder with ``--data-dir``: that is how the first user is made
before any client can authenticate, and a running broker picks the change up by itself.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path
from typing import Annotated

import typer

from headwater.cli._common import DEFAULT_BOOTSTRAP, Bootstrap, fail, load_client_properties
from headwater.client import AdminError, ScramUsers
from headwater.security._credentials import CredentialStore, credentials_path
from headwater.security._errors import SecurityError
from headwater.security._scram import SCRAM_MECHANISMS, ScramCredential

app = typer.Typer(
    help="Manage SCRAM users (SASL/SCRAM-SHA-256, SCRAM-SHA-512 and PLAIN logins).",
    no_args_is_help=True,
)

DataDir = Annotated[
    Path | None,
    typer.Option(
        help="Edit the credential store in this broker data folder directly instead of "
        "asking a broker over the wire (needed for the first user; a running broker picks "
        "the change up).",
    ),
]
CommandConfig = Annotated[
    Path | None,
    typer.Option(
        help="Client properties file (key=value lines, as Kafka's tools take), e.g. "
        "security.protocol, sasl.mechanism, sasl.username, sasl.password, ssl.ca.location.",
    ),
]
Mechanisms = Annotated[
    list[str] | None,
    typer.Option(
        "--mechanism",
        "-m",
        help="SCRAM-SHA-256 or SCRAM-SHA-512; repeat for both [default: both].",
    ),
]


def _mechanisms(given: list[str] | None) -> list[str]:
    chosen = [m.upper() for m in (given or SCRAM_MECHANISMS)]
    unknown = [m for m in chosen if m not in SCRAM_MECHANISMS]
    if unknown:
        raise fail(f"unknown mechanism {', '.join(unknown)}: use {' or '.join(SCRAM_MECHANISMS)}")
    return chosen


def _password(given: str | None) -> str:
    password = given if given is not None else os.environ.get("HEADWATER_USER_PASSWORD")
    if password is None:
        password = getpass.getpass("password: ")
    if not password:
        raise fail("the password is empty: give --password, HEADWATER_USER_PASSWORD or type one")
    return password


def _store(data_dir: Path) -> CredentialStore:
    try:
        return CredentialStore(credentials_path(data_dir))
    except SecurityError as exc:
        raise fail(str(exc)) from None


@app.command("add")
def add(
    user: Annotated[str, typer.Argument(help="User name; clients log in as it.")],
    password: Annotated[
        str | None,
        typer.Option(
            help="The password [default: env HEADWATER_USER_PASSWORD, else asked for]; "
            "prefer the prompt, a flag shows in the process list.",
        ),
    ] = None,
    mechanism: Mechanisms = None,
    iterations: Annotated[
        int, typer.Option(help="SCRAM iterations, 4096 to 16384 (more is slower to guess).")
    ] = 8192,
    data_dir: DataDir = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    command_config: CommandConfig = None,
) -> None:
    """Create a user, or set a new password for an existing one."""
    mechanisms = _mechanisms(mechanism)
    secret = _password(password)
    try:
        if data_dir is not None:
            store = _store(data_dir)
            for name in mechanisms:
                store.upsert(user, ScramCredential.from_password(name, secret, iterations))
        else:
            users = ScramUsers(bootstrap, load_client_properties(command_config))
            users.upsert(user, secret, mechanisms, iterations)
    except (AdminError, SecurityError, ValueError) as exc:
        raise fail(f"cannot add user {user!r}: {exc}") from None
    typer.echo(f"user {user} set for {', '.join(mechanisms)}")


@app.command("remove")
def remove(
    user: Annotated[str, typer.Argument(help="User name to remove.")],
    mechanism: Mechanisms = None,
    data_dir: DataDir = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    command_config: CommandConfig = None,
) -> None:
    """Remove a user's credentials (for the given mechanisms, or all of them)."""
    try:
        if data_dir is not None:
            store = _store(data_dir)
            mechanisms = [m for m, _ in store.describe().get(user, [])]
            if mechanism:
                mechanisms = [m for m in mechanisms if m in _mechanisms(mechanism)]
            if not mechanisms:
                raise fail(f"no user {user!r} in {credentials_path(data_dir)}")
            for name in mechanisms:
                store.delete(user, name)
        else:
            users = ScramUsers(bootstrap, load_client_properties(command_config))
            known = [m for m, _ in users.describe([user]).get(user, [])]
            mechanisms = [m for m in known if m in _mechanisms(mechanism)]
            if not mechanisms:
                raise fail(f"user {user!r} has no such credentials")
            users.delete(user, mechanisms)
    except (AdminError, SecurityError) as exc:
        raise fail(f"cannot remove user {user!r}: {exc}") from None
    typer.echo(f"user {user} removed for {', '.join(mechanisms)}")


@app.command("list")
def list_users(
    data_dir: DataDir = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
    command_config: CommandConfig = None,
) -> None:
    """List users with their mechanisms and iteration counts (never a password or hash)."""
    try:
        if data_dir is not None:
            described = _store(data_dir).describe()
        else:
            described = ScramUsers(bootstrap, load_client_properties(command_config)).describe()
    except (AdminError, SecurityError) as exc:
        raise fail(f"cannot list users: {exc}") from None
    if not described:
        typer.echo("no users")
    for user, credentials in sorted(described.items()):
        mechs = ", ".join(f"{m} ({n} iterations)" for m, n in credentials)
        typer.echo(f"{user}\t{mechs}")
