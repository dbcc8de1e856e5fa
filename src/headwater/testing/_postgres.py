"""A throwaway PostgreSQL server for tests and benchmarks: initdb, pg_ctl, loopback, trust.

PostgreSQL refuses to run as root, so when the caller is root the server runs as the
``postgres`` system user (from the Debian package) in a directory that user owns.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_START_TIMEOUT_S = 60


def pg_bin_dir() -> Path:
    """Where initdb and pg_ctl live: PATH first, then Debian's versioned directories."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if not candidates:
        raise RuntimeError(
            "PostgreSQL server binaries (pg_ctl, initdb) were not found; "
            "run scripts/install-test-tools or apt-get install postgresql"
        )
    return Path(candidates[0]).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PostgresServer:
    """One server on 127.0.0.1 and a free port, data and socket in a private temp directory."""

    def __init__(self, *settings: str) -> None:
        self.settings = settings
        self.port = 0
        self.base: Path | None = None
        self._bin = pg_bin_dir()
        self._as_root = os.geteuid() == 0

    def url(self, database: str = "postgres") -> str:
        """A SQLAlchemy URL for ``database`` (trust authentication, no password)."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def dsn(self, database: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname={database}"

    def _run(self, *args: str) -> None:
        command = [str(self._bin / args[0]), *args[1:]]
        if self._as_root:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{args[0]} failed ({done.returncode}): {done.stderr.strip() or done.stdout}"
            )

    def start(self) -> PostgresServer:
        self.base = Path(tempfile.mkdtemp(prefix="headwater-pg-"))
        if self._as_root:
            user = pwd.getpwnam("postgres")
            os.chown(self.base, user.pw_uid, user.pw_gid)
        data = self.base / "data"
        self._run(
            "initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"
        )
        self.port = _free_port()
        self.resume()
        return self

    def resume(self) -> None:
        """Start the server (again) on the same port and data directory."""
        assert self.base is not None, "start() first"
        options = " ".join(
            [
                f"-p {self.port}",
                "-h 127.0.0.1",
                f"-k {self.base}",
                *(f"-c {s}" for s in self.settings),
            ]
        )
        self._run(
            "pg_ctl",
            "-D",
            str(self.base / "data"),
            "-l",
            str(self.base / "server.log"),
            "-o",
            options,
            "-w",
            "-t",
            str(_START_TIMEOUT_S),
            "start",
        )

    def pause(self) -> None:
        """Stop the server but keep its data, as an outage that ``resume`` ends."""
        assert self.base is not None, "start() first"
        self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")

    def create_database(self, name: str) -> str:
        """Create ``name`` and return its SQLAlchemy URL."""
        import psycopg

        deadline = time.monotonic() + _START_TIMEOUT_S
        while True:
            try:
                with psycopg.connect(self.dsn(), autocommit=True) as conn:
                    conn.execute(f'CREATE DATABASE "{name}"')
                return self.url(name)
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)

    def stop(self) -> None:
        if self.base is None:
            return
        try:
            if (self.base / "data" / "postmaster.pid").exists():
                self.pause()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


@contextmanager
def postgres_server(*settings: str) -> Iterator[PostgresServer]:
    """A started server, stopped and deleted when the block ends."""
    server = PostgresServer(*settings).start()
    try:
        yield server
    finally:
        server.stop()
