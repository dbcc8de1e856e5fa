"""Which database errors are worth retrying and which mean the batch's contents are at fault."""

from __future__ import annotations

import sqlite3

import psycopg
from sqlalchemy import exc as sa_exc

from headwater.connect._sink import BatchRejected, TransientError

_SQLITE_TRANSIENT = ("locked", "busy", "disk i/o error", "unable to open")


def classify(error: Exception) -> Exception:
    """Map a driver or SQLAlchemy error to ``TransientError``, ``BatchRejected`` or itself.

    Anything not recognised is returned unchanged and stops the sink: a programming error
    (a missing table, a bad statement) will not get better by retrying or by dead-lettering.
    """
    orig: BaseException = error
    if isinstance(error, sa_exc.DBAPIError) and error.orig is not None:
        orig = error.orig
        if error.connection_invalidated:
            return _transient(orig, error)
    if isinstance(error, sa_exc.DisconnectionError | sa_exc.TimeoutError):
        return _transient(orig, error)
    if isinstance(orig, psycopg.errors.IntegrityError | psycopg.errors.DataError):
        return _rejected(orig)
    if isinstance(orig, psycopg.errors.OperationalError | psycopg.errors.InterfaceError):
        return _transient(orig, error)
    if isinstance(orig, sqlite3.IntegrityError | sqlite3.DataError):
        return _rejected(orig)
    if isinstance(orig, sqlite3.OperationalError) and any(
        word in str(orig).lower() for word in _SQLITE_TRANSIENT
    ):
        return _transient(orig, error)
    return error


def _transient(orig: BaseException, error: Exception) -> TransientError:
    new = TransientError(f"{type(orig).__name__}: {_first_line(orig)}")
    new.__cause__ = error
    return new


def _rejected(orig: BaseException) -> BatchRejected:
    new = BatchRejected(_first_line(orig))
    new.__cause__ = orig
    return new


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
