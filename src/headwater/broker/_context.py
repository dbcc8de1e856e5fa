"""What a handler gets besides its request: the broker, the header and who is asking."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from headwater.protocol._codec import RequestHeader

if TYPE_CHECKING:
    from headwater.broker._server import Broker


@dataclass(slots=True)
class RequestContext:
    broker: Broker
    header: RequestHeader
    client_host: str
    # Set by authentication once SASL lands; every request is anonymous until then.
    principal: str = "User:ANONYMOUS"

    @property
    def version(self) -> int:
        return self.header.api_version
