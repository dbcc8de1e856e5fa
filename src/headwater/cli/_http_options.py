"""Checks shared by the commands that run an HTTP service: HTTPS files and HTTP Basic users."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from headwater.cli._common import fail

if TYPE_CHECKING:
    from headwater.security._http_auth import BasicAuth


def check_tls(certfile: Path | None, keyfile: Path | None) -> None:
    """Refuse a certificate without a key (or the other way round), or a missing file."""
    if (certfile is None) != (keyfile is None):
        raise fail("--ssl-certfile and --ssl-keyfile go together: give both for HTTPS")
    for flag, path in (("--ssl-certfile", certfile), ("--ssl-keyfile", keyfile)):
        if path is not None and not path.is_file():
            raise fail(f"{flag} {path}: no such file")


def basic_auth(
    users_file: Path | None,
    data_dir: Path | None,
    read_write_users: list[str] | None,
    realm: str,
) -> BasicAuth | None:
    """The Basic authenticator the options ask for, or None when they ask for none."""
    from headwater.security._credentials import CredentialStore, credentials_path
    from headwater.security._errors import SecurityError
    from headwater.security._http_auth import READ_WRITE, BasicAuth

    if users_file is not None and data_dir is not None:
        raise fail("give --users-file or --data-dir, not both")
    path = users_file if data_dir is None else credentials_path(data_dir)
    if path is None:
        if read_write_users:
            raise fail("--read-write-user needs --users-file or --data-dir")
        return None
    if not path.is_file():
        raise fail(
            f"no SCRAM credential file at {path}; add a user with "
            "`headwater users add NAME --data-dir <broker data dir>` first"
        )
    try:
        store = CredentialStore(path)
    except SecurityError as exc:
        raise fail(str(exc)) from None
    roles = {user: READ_WRITE for user in read_write_users or ()}
    return BasicAuth(store, roles, realm=realm)
