"""How this package's clients reach a secured schema registry: Basic credentials and a CA.

One pair of settings for every registry client the package makes (the registry-aware serdes
through confluent-kafka's ``SchemaRegistryClient``, the contracts commands through httpx), so
a registry behind HTTPS and Basic authentication is configured once. Each comes from the
caller, else from the environment; unset, nothing changes:

- ``HEADWATER_REGISTRY_AUTH``: ``user:password`` (confluent-kafka's ``basic.auth.user.info``),
- ``HEADWATER_REGISTRY_CA``: a PEM file of CA certificates that the registry's certificate must
  chain to (``ssl.ca.location``); without it the system's CAs are trusted, as before.
"""

from __future__ import annotations

import os
import ssl
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REGISTRY_AUTH_ENV", "REGISTRY_CA_ENV", "RegistryAccess"]

REGISTRY_AUTH_ENV = "HEADWATER_REGISTRY_AUTH"
REGISTRY_CA_ENV = "HEADWATER_REGISTRY_CA"


@dataclass(frozen=True, slots=True)
class RegistryAccess:
    """Basic credentials (``user:password``) and a CA file for registry clients; both optional.

    The credentials are left out of ``repr``, so logging the settings leaks no password.
    """

    user_info: str | None = field(default=None, repr=False)
    ca_location: str | None = None

    def __post_init__(self) -> None:
        if self.user_info is not None and ":" not in self.user_info:
            raise ValueError(
                f"registry credentials must look like user:password ({REGISTRY_AUTH_ENV})"
            )

    @classmethod
    def resolve(
        cls, user_info: str | None = None, ca_location: str | None = None
    ) -> RegistryAccess:
        """The settings given, each falling back to its environment variable when None."""
        if user_info is None:
            user_info = os.environ.get(REGISTRY_AUTH_ENV) or None
        if ca_location is None:
            ca_location = os.environ.get(REGISTRY_CA_ENV) or None
        return cls(user_info, ca_location)

    def confluent_conf(self) -> dict[str, str]:
        """The settings in ``SchemaRegistryClient``'s names, to merge into its config."""
        conf: dict[str, str] = {}
        if self.user_info is not None:
            conf["basic.auth.user.info"] = self.user_info
        if self.ca_location is not None:
            conf["ssl.ca.location"] = self.ca_location
        return conf

    def httpx_options(self) -> dict[str, Any]:
        """Keyword arguments for ``httpx.Client``: ``auth`` and ``verify`` when set."""
        options: dict[str, Any] = {}
        if self.user_info is not None:
            user, _, password = self.user_info.partition(":")
            options["auth"] = (user, password)
        if self.ca_location is not None:
            options["verify"] = ssl.create_default_context(cafile=self.ca_location)
        return options
