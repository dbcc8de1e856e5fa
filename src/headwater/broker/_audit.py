"""The broker's audit hooks: logins, refusals and admin changes become audit records.

Each hook is called from one place (``Broker._dispatch`` after the handler, the SASL handler,
the authorizer's refusal log) and returns after one attribute check when the audit log is
off (``broker.audit is None``). They read the broker, the request context and the session
duck-typed (``config.node_id``, ``audit``, ``principal``, ``client_host``, ...), so tests drive
them with small fakes. Recording never fails a request: a record that cannot be built is
logged and the request is answered as if the audit log were off.

Which APIs are changes, and what each one changed, is ``_audit_changes.AUDITED``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol

from headwater.broker._audit_changes import AUDITED
from headwater.broker._registry import HANDLERS
from headwater.security._audit import (
    ADMIN_PREFIX,
    AUTHENTICATION,
    AUTHORIZATION_DENIED,
    TRANSACTION_TIMEOUT_ABORT,
    AuditLog,
    TopicSink,
    audit_path,
    broker_source,
    request_data,
    subject,
    text,
)

if TYPE_CHECKING:
    from pathlib import Path

    from headwater.broker._txn_coordinator import TransactionCoordinator
    from headwater.security._acl import AclOperation, ResourceType

log = logging.getLogger(__name__)

SASL_AUTHENTICATION_FAILED = 58
# The code a refusal on each resource type is answered with.
_DENIED_CODES = {"TOPIC": 29, "GROUP": 30, "CLUSTER": 31, "TRANSACTIONAL_ID": 53}
ANONYMOUS = "User:ANONYMOUS"
_ONGOING = "Ongoing"
_ABORTED = ("PrepareAbort", "CompleteAbort")


class _Header(Protocol):
    @property
    def api_key(self) -> int: ...
    @property
    def client_id(self) -> str | None: ...


class _Context(Protocol):
    """What the hooks read of a request (``RequestContext``)."""

    @property
    def header(self) -> _Header: ...
    @property
    def client_host(self) -> str: ...
    @property
    def principal(self) -> str: ...
    @property
    def listener(self) -> str: ...


class _Listener(Protocol):
    @property
    def name(self) -> str: ...


class _Session(Protocol):
    @property
    def principal(self) -> str: ...
    @property
    def listener(self) -> _Listener: ...


class _Broker(Protocol):
    @property
    def audit(self) -> AuditLog | None: ...


class _TxnBroker(_Broker, Protocol):
    @property
    def transactions(self) -> TransactionCoordinator: ...
    def now_ms(self) -> int: ...


class AuditConfig(Protocol):
    """The broker settings of the audit log (``BrokerConfig``)."""

    @property
    def node_id(self) -> int: ...
    @property
    def data_dir(self) -> Path: ...
    @property
    def audit_log_enabled(self) -> bool: ...
    @property
    def audit_log_dir(self) -> Path | None: ...
    @property
    def audit_log_bytes_max(self) -> int: ...
    @property
    def audit_log_files_max(self) -> int: ...


def open_audit_log(config: AuditConfig, topic_sink: TopicSink | None = None) -> AuditLog | None:
    """The broker's audit log (``<audit_log_dir or data_dir/audit>/audit.log``), or None."""
    if not config.audit_log_enabled:
        return None
    directory = config.audit_log_dir
    path = audit_path(config.data_dir) if directory is None else directory / "audit.log"
    return AuditLog(
        path,
        source=broker_source(config.node_id),
        bytes_max=config.audit_log_bytes_max,
        files_max=config.audit_log_files_max,
        topic_sink=topic_sink,
    )


def audit_request(
    broker: _Broker, ctx: _Context, api_key: int, request_body: Any, response: Any
) -> None:
    """Record the admin changes a request made (or tried to), one record per resource."""
    audit = broker.audit
    if audit is None:
        return
    audited = AUDITED.get(api_key)
    if audited is None or not isinstance(response, Mapping):
        return
    api, build = audited
    try:
        changes = build(request_body, response)
        header = ctx.header
        for c in changes:
            data = request_data(
                principal=ctx.principal,
                client_address=ctx.client_host,
                client_id=header.client_id,
                listener=ctx.listener,
                api=api,
                operation=c.operation,
                resource_type=c.resource_type,
                resource_name=c.resource_name,
                error_code=c.error_code,
                change=c.change,
            )
            audit.record(ADMIN_PREFIX + c.action, subject(c.resource_type, c.resource_name), data)
    except Exception:
        log.exception("audit record not built api_key=%d", api_key)


def audit_authentication(
    broker: _Broker,
    session: _Session,
    client: str,
    mechanism: str | None,
    success: bool,
    reason: str | None = None,
    *,
    client_id: str | None = None,
    user: str | None = None,
    error_code: int = SASL_AUTHENTICATION_FAILED,
) -> None:
    """Record one SASL authentication: its outcome, never its tokens.

    ``user`` is the name the client tried, when known on a failure (the session's principal
    is then still the one it had: ANONYMOUS, or the old one when re-authenticating); without
    it a first login's failure names no user (subject ``user/``).
    """
    audit = broker.audit
    if audit is None:
        return
    principal = session.principal
    name = user
    if name is None and (success or principal != ANONYMOUS):
        name = principal.removeprefix("User:")
    try:
        data = request_data(
            principal=principal,
            client_address=client,
            client_id=client_id,
            listener=session.listener.name,
            api="SaslAuthenticate",
            operation="AUTHENTICATE",
            resource_type="USER",
            resource_name=name,
            error_code=0 if success else error_code,
            mechanism=mechanism,
        )
        if not success:
            data["reason"] = text(reason)
        audit.record(AUTHENTICATION, subject("USER", name), data)
    except Exception:
        log.exception("audit record not built: authentication")


def audit_denied(
    broker: _Broker,
    ctx: _Context,
    operation: AclOperation,
    resource_type: ResourceType,
    name: str,
) -> None:
    """Record one authorisation refusal (only those the authorizer logs, not left-outs)."""
    audit = broker.audit
    if audit is None:
        return
    try:
        header = ctx.header
        handler = HANDLERS.get(header.api_key)
        kind = resource_type.name
        data = request_data(
            principal=ctx.principal,
            client_address=ctx.client_host,
            client_id=header.client_id,
            listener=ctx.listener,
            api=handler.name if handler is not None else str(header.api_key),
            operation=operation.name,
            resource_type=kind,
            resource_name=name,
            error_code=_DENIED_CODES.get(kind, 31),
        )
        audit.record(AUTHORIZATION_DENIED, subject(kind, name), data)
    except Exception:
        log.exception("audit record not built: authorization denied")


async def expire_transactions(broker: _TxnBroker) -> int:
    """``broker.transactions.expire()``, recording each transaction it aborted.

    Called in place of ``expire()`` by the broker's expiry task. A transaction counts as
    aborted by its timeout when it was open and past its timeout before, and is aborting or
    aborted under a new producer epoch after.
    """
    coordinator = broker.transactions
    audit = broker.audit
    if audit is None:
        return await coordinator.expire()
    before = {
        meta.transactional_id: (meta.producer_epoch, meta.start_ms, sorted(meta.partitions))
        for meta in coordinator.store.transactions.values()
        if meta.state == _ONGOING
    }
    expired = await coordinator.expire()
    if not expired:
        return expired
    now = broker.now_ms()
    for txn_id, (epoch, started_ms, partitions) in before.items():
        meta = coordinator.store.transactions.get(txn_id)
        if meta is None or meta.state not in _ABORTED or meta.producer_epoch == epoch:
            continue
        if now - started_ms <= meta.timeout_ms:
            continue
        try:
            data = request_data(
                principal=None,
                client_address=None,
                client_id=None,
                listener=None,
                api="EndTxn",
                operation="ABORT",
                resource_type="TRANSACTIONAL_ID",
                resource_name=txn_id,
                error_code=0,
                change={
                    "producer_id": meta.producer_id,
                    "producer_epoch": meta.producer_epoch,
                    "timeout_ms": meta.timeout_ms,
                    "started_ms": started_ms,
                    "partitions": [{"topic": t, "partition": p} for t, p in partitions],
                },
                initiator="broker",
            )
            audit.record(TRANSACTION_TIMEOUT_ABORT, subject("TRANSACTIONAL_ID", txn_id), data)
        except Exception:
            log.exception("audit record not built: transaction timeout")
    return expired
