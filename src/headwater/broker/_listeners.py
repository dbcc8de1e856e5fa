"""Listeners as Kafka names them: ``NAME://host:port`` with a security protocol each.

``listeners = "PLAINTEXT://127.0.0.1:9092,SASL_SSL://0.0.0.0:9093"`` binds two sockets; a
listener's name is its security protocol unless ``listener_security_protocol_map`` maps a
custom name (``INTERNAL:SASL_PLAINTEXT``). ``advertised_listeners`` says, per listener name,
what address clients are sent back to, so a client is always told about the listener it came
in on. Parsing is pure; the server binds what this returns.
"""

from __future__ import annotations

import dataclasses
import ipaddress

SECURITY_PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")


@dataclasses.dataclass(frozen=True, slots=True)
class Listener:
    """One socket the broker binds and the security it demands there."""

    name: str
    protocol: str
    host: str
    port: int

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)

    def __str__(self) -> str:
        return f"{self.name}://{_join(self.host, self.port)}"


def is_loopback(host: str) -> bool:
    """True only for addresses no other machine can reach (an empty host binds them all)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _join(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _split(entry: str, setting: str) -> tuple[str, str, int]:
    name, sep, address = entry.strip().partition("://")
    if not sep or not name:
        raise ValueError(f"{setting}: {entry!r} is not NAME://host:port")
    host, colon, port_text = address.rpartition(":")
    if not colon or not port_text.isdigit():
        raise ValueError(f"{setting}: {entry!r} has no port (NAME://host:port)")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise ValueError(f"{setting}: port {port} in {entry!r} is not a TCP port")
    return name.upper(), host.strip("[]"), port


def parse_protocol_map(text: str) -> dict[str, str]:
    """``INTERNAL:SASL_PLAINTEXT,EXTERNAL:SASL_SSL`` → {name: protocol}."""
    mapping: dict[str, str] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, sep, protocol = entry.partition(":")
        protocol = protocol.strip().upper()
        if not sep or protocol not in SECURITY_PROTOCOLS:
            raise ValueError(
                f"listener_security_protocol_map: {entry!r} is not NAME:PROTOCOL with PROTOCOL "
                f"one of {', '.join(SECURITY_PROTOCOLS)}"
            )
        mapping[name.strip().upper()] = protocol
    return mapping


def parse_listeners(text: str, protocol_map: str = "") -> list[Listener]:
    """The listeners to bind, in the order given; names must be unique and known."""
    mapping = {p: p for p in SECURITY_PROTOCOLS} | parse_protocol_map(protocol_map)
    listeners: list[Listener] = []
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, host, port = _split(entry, "listeners")
        if name not in mapping:
            raise ValueError(
                f"listeners: {name} is neither a security protocol "
                f"({', '.join(SECURITY_PROTOCOLS)}) nor named in listener_security_protocol_map"
            )
        if any(other.name == name for other in listeners):
            raise ValueError(f"listeners: {name} is listed twice")
        if port and any(other.port == port and other.host == host for other in listeners):
            raise ValueError(f"listeners: {_join(host, port)} is bound twice")
        listeners.append(Listener(name, mapping[name], host, port))
    if not listeners:
        raise ValueError("listeners: at least one NAME://host:port is needed")
    return listeners


def parse_advertised(text: str, listeners: list[Listener]) -> dict[str, tuple[str, int]]:
    """{listener name: (host, port)} for the names given; the rest advertise their bind."""
    names = {listener.name for listener in listeners}
    advertised: dict[str, tuple[str, int]] = {}
    for entry in filter(None, (e.strip() for e in text.split(","))):
        name, host, port = _split(entry, "advertised_listeners")
        if name not in names:
            raise ValueError(
                f"advertised_listeners: {name} is not one of the listeners ({', '.join(names)})"
            )
        advertised[name] = (host, port)
    return advertised
