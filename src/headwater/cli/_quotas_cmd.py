"""``headwater quotas``: set, list and remove client quotas (``kafka-configs --entity-type
users|clients --alter --add-config producer_byte_rate=...``).

Goes through ``headwater.client.QuotaAdmin`` (DescribeClientQuotas and AlterClientQuotas), so
the same command manages an Apache Kafka cluster. The client stack is imported when a command
runs, not at CLI start.
"""

from __future__ import annotations

from typing import Annotated

import typer

from headwater.cli._common import DEFAULT_BOOTSTRAP, Bootstrap, fail

app = typer.Typer(
    help="Client quotas (byte rates and request time) per user and client id, as Kafka's.",
    no_args_is_help=True,
)

User = Annotated[
    str | None, typer.Option("--user", help="The user (the SASL or TLS principal name).")
]
DefaultUser = Annotated[
    bool, typer.Option("--default-user", help="The default for every user without its own.")
]
ClientId = Annotated[str | None, typer.Option("--client-id", help="The client.id of clients.")]
DefaultClientId = Annotated[
    bool,
    typer.Option("--default-client-id", help="The default for every client id without its own."),
]
ProducerRate = Annotated[
    int | None,
    typer.Option("--producer-byte-rate", min=1, help="Produce bytes per second (whole number)."),
]
ConsumerRate = Annotated[
    int | None,
    typer.Option("--consumer-byte-rate", min=1, help="Fetched bytes per second (whole number)."),
]
RequestPercentage = Annotated[
    float | None,
    typer.Option(
        "--request-percentage",
        min=0.0,
        help="Percentage of one request handler thread's time (e.g. 50 for half).",
    ),
]


def _entity(
    user: str | None, default_user: bool, client_id: str | None, default_client_id: bool
) -> dict[str, str | None]:
    if user is not None and default_user:
        raise fail("give --user NAME or --default-user, not both")
    if client_id is not None and default_client_id:
        raise fail("give --client-id ID or --default-client-id, not both")
    entity: dict[str, str | None] = {}
    if user is not None or default_user:
        entity["user"] = user
    if client_id is not None or default_client_id:
        entity["client-id"] = client_id
    if not entity:
        raise fail("name an entity: --user, --default-user, --client-id or --default-client-id")
    return entity


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


@app.command("set")
def set_(
    user: User = None,
    default_user: DefaultUser = False,
    client_id: ClientId = None,
    default_client_id: DefaultClientId = False,
    producer_byte_rate: ProducerRate = None,
    consumer_byte_rate: ConsumerRate = None,
    request_percentage: RequestPercentage = None,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> None:
    """Set quota values of one entity (others it has are kept)."""
    from headwater.client import AdminError, QuotaAdmin

    entity = _entity(user, default_user, client_id, default_client_id)
    values: dict[str, float] = {}
    if producer_byte_rate is not None:
        values["producer_byte_rate"] = producer_byte_rate
    if consumer_byte_rate is not None:
        values["consumer_byte_rate"] = consumer_byte_rate
    if request_percentage is not None:
        values["request_percentage"] = request_percentage
    if not values:
        raise fail(
            "give a value: --producer-byte-rate, --consumer-byte-rate or --request-percentage"
        )
    try:
        with QuotaAdmin(bootstrap) as admin:
            admin.alter(entity, values)
    except AdminError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"set {', '.join(f'{k}={_number(v)}' for k, v in values.items())}")


@app.command("remove")
def remove(
    user: User = None,
    default_user: DefaultUser = False,
    client_id: ClientId = None,
    default_client_id: DefaultClientId = False,
    producer_byte_rate: Annotated[
        bool, typer.Option("--producer-byte-rate", help="Remove the produce byte rate.")
    ] = False,
    consumer_byte_rate: Annotated[
        bool, typer.Option("--consumer-byte-rate", help="Remove the fetch byte rate.")
    ] = False,
    request_percentage: Annotated[
        bool, typer.Option("--request-percentage", help="Remove the request percentage.")
    ] = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> None:
    """Remove quota values of one entity; with no value named, all of them."""
    from headwater.client import AdminError, QuotaAdmin
    from headwater.client._quota_admin import QUOTA_KEYS

    entity = _entity(user, default_user, client_id, default_client_id)
    chosen = tuple(
        key
        for key, flag in (
            ("producer_byte_rate", producer_byte_rate),
            ("consumer_byte_rate", consumer_byte_rate),
            ("request_percentage", request_percentage),
        )
        if flag
    )
    try:
        with QuotaAdmin(bootstrap) as admin:
            admin.alter(entity, remove=chosen or QUOTA_KEYS)
    except AdminError as exc:
        raise fail(str(exc)) from None
    typer.echo(f"removed {', '.join(chosen) if chosen else 'every quota'}")


@app.command("list")
def list_(
    user: User = None,
    default_user: DefaultUser = False,
    client_id: ClientId = None,
    default_client_id: DefaultClientId = False,
    bootstrap: Bootstrap = DEFAULT_BOOTSTRAP,
) -> None:
    """List configured quotas, or those of the entities matching the options given."""
    from headwater.client import AdminError, QuotaAdmin

    wanted: dict[str, str | None] = {}
    if user is not None or default_user or client_id is not None or default_client_id:
        wanted = _entity(user, default_user, client_id, default_client_id)
    try:
        with QuotaAdmin(bootstrap) as admin:
            entries = admin.describe(wanted)
    except AdminError as exc:
        raise fail(str(exc)) from None
    if not entries:
        typer.echo("no quotas match")
        return
    for entry in sorted(entries, key=lambda e: e.label):
        values = " ".join(f"{k}={_number(v)}" for k, v in sorted(entry.values.items()))
        typer.echo(f"{entry.label}\t{values}")
