"""The durable SCRAM credential store: ``<data-dir>/__meta/scram-credentials.json``.

One JSON object, ``user -> mechanism -> {salt, stored_key, server_key, iterations}`` with the
bytes in base64; never a password. Every change rewrites the whole file with a crash-safe
rename (mode 0600: the keys let an attacker who reads them mount an offline guess), so a
crash leaves the old or the new set. ``get`` compares the file's inode, mtime and size on each
call, a single stat, and reloads when they changed: ``headwater users add --data-dir`` against
a running broker takes effect at the next login, without a restart.

Writers do not lock each other out: the broker and the CLI changing users at the same moment
can lose one change. User changes are rare and made by one operator, which is why that is
accepted.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from pathlib import Path
from typing import Any

from headwater.security._errors import SecurityError, UnacceptableCredential
from headwater.security._scram import SCRAM_MECHANISMS, ScramCredential
from headwater.storage._durable_file import write_json

USER_NAME_CHARS_MAX = 256
# Each change rewrites every user; past this the file is the wrong tool.
USERS_MAX = 100_000
_FIELDS = frozenset({"salt", "stored_key", "server_key", "iterations"})

_Users = dict[str, dict[str, ScramCredential]]
_Signature = tuple[int, int, int]


def credentials_path(data_dir: Path) -> Path:
    """Where a broker with ``data_dir`` keeps its SCRAM credentials."""
    return data_dir / "__meta" / "scram-credentials.json"


def check_user_name(user: str) -> str:
    """``user`` if it can be stored: non-empty, at most 256 characters, UTF-8, no NUL.

    NUL is refused because neither PLAIN nor SCRAM could carry such a name to log in with.
    """
    if not user:
        raise UnacceptableCredential("Username must not be empty")
    if len(user) > USER_NAME_CHARS_MAX:
        raise UnacceptableCredential(f"Username is longer than {USER_NAME_CHARS_MAX} characters")
    if "\x00" in user:
        raise UnacceptableCredential("Username must not contain NUL")
    try:
        user.encode("utf-8")
    except UnicodeEncodeError:
        raise UnacceptableCredential("Username is not valid Unicode text") from None
    return user


class CredentialStore:
    """The users' SCRAM credentials, and the file that makes them survive a restart."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._users: _Users = {}
        self._signature: _Signature | None = None
        self._loaded = False
        self._refresh()

    def get(self, user: str, mechanism: str) -> ScramCredential | None:
        """The credential ``user`` logs in with over ``mechanism``, or None."""
        self._refresh()
        return self._users.get(user, {}).get(mechanism)

    def upsert(self, user: str, credential: ScramCredential) -> None:
        """Create or replace ``user``'s credential for ``credential.mechanism``."""
        check_user_name(user)
        self._refresh()
        users = {name: dict(mechanisms) for name, mechanisms in self._users.items()}
        if user not in users and len(users) >= USERS_MAX:
            raise UnacceptableCredential(f"The credential store already holds {USERS_MAX} users")
        users.setdefault(user, {})[credential.mechanism] = credential
        self._save(users)

    def delete(self, user: str, mechanism: str) -> bool:
        """Remove ``user``'s credential for ``mechanism``; False when there was none."""
        self._refresh()
        if mechanism not in self._users.get(user, {}):
            return False
        users = {name: dict(mechanisms) for name, mechanisms in self._users.items()}
        del users[user][mechanism]
        if not users[user]:
            del users[user]
        self._save(users)
        return True

    def describe(self) -> dict[str, list[tuple[str, int]]]:
        """user -> [(mechanism, iterations)], sorted; what DescribeUserScramCredentials shows."""
        self._refresh()
        return {
            user: [(name, cred.iterations) for name, cred in sorted(mechanisms.items())]
            for user, mechanisms in sorted(self._users.items())
        }

    def users(self) -> list[str]:
        """The user names, sorted."""
        self._refresh()
        return sorted(self._users)

    def _stat(self) -> _Signature | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise SecurityError(
                f"Cannot read the SCRAM credential file {self.path}: {exc}"
            ) from None
        return st.st_ino, st.st_mtime_ns, st.st_size

    def _refresh(self) -> None:
        # Stat before reading: a rewrite in between is then seen as a change next time.
        signature = self._stat()
        if self._loaded and signature == self._signature:
            return
        self._users = {} if signature is None else self._load()
        self._signature = signature
        self._loaded = True

    def _load(self) -> _Users:
        try:
            raw = json.loads(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise SecurityError(
                f"Cannot read the SCRAM credential file {self.path}: {exc}"
            ) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise self._corrupt(f"not valid JSON: {exc}") from None
        try:
            return _users_from_json(raw)
        except (TypeError, ValueError, KeyError, SecurityError) as exc:
            raise self._corrupt(str(exc)) from None

    def _corrupt(self, reason: str) -> SecurityError:
        return SecurityError(
            f"The SCRAM credential file {self.path} is corrupt ({reason}). Restore it from a "
            "backup, or move it aside and add the users again with "
            "`headwater users add --data-dir`."
        )

    def _save(self, users: _Users) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, _users_to_json(users), mode=0o600)
        self._users = users
        self._signature = self._stat()


def _users_to_json(users: _Users) -> dict[str, Any]:
    return {
        user: {
            name: {
                "salt": base64.b64encode(cred.salt).decode("ascii"),
                "stored_key": base64.b64encode(cred.stored_key).decode("ascii"),
                "server_key": base64.b64encode(cred.server_key).decode("ascii"),
                "iterations": cred.iterations,
            }
            for name, cred in mechanisms.items()
        }
        for user, mechanisms in users.items()
    }


def _users_from_json(raw: Any) -> _Users:
    if not isinstance(raw, dict):
        raise ValueError("the top level is not an object of users")
    if len(raw) > USERS_MAX:
        raise ValueError(f"more than {USERS_MAX} users")
    users: _Users = {}
    for user, mechanisms in raw.items():
        check_user_name(user)
        if not isinstance(mechanisms, dict):
            raise ValueError(f"user {user!r} is not an object of mechanisms")
        users[user] = {}
        for name, entry in mechanisms.items():
            if name not in SCRAM_MECHANISMS:
                raise ValueError(f"user {user!r} has an unknown mechanism {name!r}")
            if not isinstance(entry, dict) or set(entry) != _FIELDS:
                raise ValueError(f"user {user!r} {name} needs exactly {', '.join(sorted(_FIELDS))}")
            users[user][name] = ScramCredential(
                name,
                _b64(entry["salt"]),
                _b64(entry["stored_key"]),
                _b64(entry["server_key"]),
                entry["iterations"],
            )
    return users


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("a salt or key is not a base64 string")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("a salt or key is not valid base64") from None
