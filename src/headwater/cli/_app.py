"""The root Typer app and its command groups."""

from __future__ import annotations

import typer

from headwater.cli import (
    _acls_cmd,
    _audit_cmd,
    _broker_cmd,
    _certs_cmd,
    _contracts_cmd,
    _demo_cmd,
    _doctor_cmd,
    _groups_cmd,
    _io_cmd,
    _quotas_cmd,
    _registry_cmd,
    _sink_cmd,
    _topics_cmd,
    _txn_cmd,
    _users_cmd,
)

app = typer.Typer(
    name="headwater",
    help="Real-time data ingestion on the Kafka protocol: broker, streams demo, sinks, "
    "schema registry, contracts, topics, groups, transactions and a settings doctor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.command("broker")(_broker_cmd.broker)
app.add_typer(_topics_cmd.app, name="topics")
app.add_typer(_groups_cmd.app, name="groups")
app.add_typer(_txn_cmd.app, name="transactions")
app.add_typer(_acls_cmd.app, name="acls")
app.command("produce")(_io_cmd.produce)
app.command("consume")(_io_cmd.consume)
app.command("demo")(_demo_cmd.demo)
app.add_typer(_sink_cmd.app, name="sink")
app.command("registry")(_registry_cmd.registry)
app.add_typer(_contracts_cmd.app, name="contracts")
app.command("doctor")(_doctor_cmd.doctor)
app.add_typer(_certs_cmd.app, name="certs")
app.add_typer(_users_cmd.app, name="users")
app.add_typer(_quotas_cmd.app, name="quotas")
app.add_typer(_audit_cmd.app, name="audit")


def main() -> None:
    app()
