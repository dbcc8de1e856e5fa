"""What a handler gets besides its request: the broker, the header and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from headwater.broker._session import Session
from headwater.protocol._codec import RequestHeader

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
