"""The security error tree.

SecurityError              base of everything headwater.security raises on purpose
├── AuthenticationFailed   a SASL exchange is refused; the message is safe to send the client
├── UnacceptableCredential a credential or user name that cannot be stored (Kafka code 93)
└── UnsupportedMechanism   a SASL mechanism or mechanism code headwater does not know (code 33)

Messages never hold a password, a salted password or a key: they end up in logs and, for
AuthenticationFailed, in the SaslAuthenticate answer.
"""

from __future__ import annotations


class SecurityError(Exception):
    """Something the security rules refuse to do."""


class AuthenticationFailed(SecurityError):
    """A client failed to authenticate: malformed message, unknown user or wrong secret."""


class UnacceptableCredential(SecurityError):
    """A credential out of bounds (iterations, salt, key sizes) or a user name not allowed."""


class UnsupportedMechanism(SecurityError):
    """A mechanism name or Kafka mechanism type code that is not SCRAM-SHA-256/512."""
