"""A real PostgreSQL server for the tests that need one, started once per session."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from headwater.testing import PostgresServer, postgres_server


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """initdb + pg_ctl as the postgres user, on 127.0.0.1 and a free port; stopped at the end."""
    with postgres_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres: PostgresServer) -> str:
    """A SQLAlchemy URL to a fresh database of its own for each test."""
    return postgres.create_database(f"t_{uuid.uuid4().hex[:12]}")
