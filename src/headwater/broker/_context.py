"""What a handler gets besides its request: the broker, the header and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from headwater.broker import _authorize
from headwater.broker._session import Session
from headwater.protocol._codec import RequestHeader
from headwater.security._acl import AclOperation, ResourceType

if TYPE_CHECKING:
    from headwater.broker._server import Broker


@dataclass(slots=True)
class RequestContext:
    broker: Broker
    header: RequestHeader
    client_host: str
    # The connection's security session: its listener and authenticated principal.
    session: Session

    @property
    def version(self) -> int:
        return self.header.api_version

    @property
    def principal(self) -> str:
        return self.session.principal

    @property
    def listener(self) -> str:
        return self.session.listener.name

    def allowed(self, operation: AclOperation, resource_type: ResourceType, name: str) -> bool:
        """May the caller do this? True at once when the authorizer is off; a refusal is
        logged and counted (``_authorize.allowed``)."""
        if self.broker.authorizer is None:
            return True
        return _authorize.allowed(self, operation, resource_type, name)
