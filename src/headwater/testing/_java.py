"""Java programs for tests and benchmarks: the classes in ``interop/jvm/src`` (built by
``scripts/install-kafka`` into ``headwater-interop.jar``) run on the cached Kafka jars.

The JVM ecosystem (Kafka's own clients, Streams, Connect) is the reference for what Kafka
clients expect, so tests run it against Headwater's broker. Programs print one JSON object per
stdout line; their logs go to stderr. Heaps are bounded and the JVM flags favour a quick start
on a shared 2-core machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from headwater.testing._kafka import _die_with_parent, _tail, kafka_libs_dir

INTEROP_JAR = "headwater-interop.jar"
_STOP_TIMEOUT_S = 20.0
_POLL_S = 0.1
# The serial collector has no concurrent threads competing on 2 cores; without perf data no
# /tmp/hsperfdata file is written; C1 alone starts faster and is plenty for test programs.
_JVM_DEFAULTS = (
    "-XX:+UseSerialGC",
    "-XX:-UsePerfData",
    "-XX:+ExitOnOutOfMemoryError",
    "-XX:TieredStopAtLevel=1",
    "-Djava.awt.headless=true",
)

JsonLine = dict[str, Any]


class JavaError(RuntimeError):
    """A Java program could not start, failed or timed out; the message carries its stderr."""


def interop_dir() -> Path:
    """The folder beside the cached Kafka jars that holds ``headwater-interop.jar``."""
    return kafka_libs_dir().parent / "interop"


def java_classpath() -> str:
    """The interop jar first (its log4j2 config wins), then every cached Kafka jar."""
    return f"{interop_dir() / INTEROP_JAR}{os.pathsep}{kafka_libs_dir() / '*'}"


def java_missing() -> str | None:
    """Why Java programs cannot run here (for ``pytest.skip``), or None when they can."""
    if shutil.which("java") is None:
        return "java not found"
    if not (kafka_libs_dir() / ".complete").is_file():
        return f"Kafka jars missing from {kafka_libs_dir()}: run scripts/install-kafka"
    if not (interop_dir() / INTEROP_JAR).is_file():
        return f"{INTEROP_JAR} missing from {interop_dir()}: run scripts/install-kafka"
    return None


def java_command(
    main_class: str,
    *args: str,
    heap_mb: int = 256,
    jvm_options: Sequence[str] = (),
    properties: Mapping[str, str] | None = None,
) -> list[str]:
    """The command line that runs ``main_class`` with a bounded heap on the cached classpath."""
    missing = java_missing()
    if missing is not None:
        raise JavaError(missing)
    java = shutil.which("java")
    assert java is not None
    props = [f"-D{key}={value}" for key, value in (properties or {}).items()]
    return [
        java,
        f"-Xms{min(64, heap_mb)}m",
        f"-Xmx{heap_mb}m",
        *_JVM_DEFAULTS,
        *jvm_options,
        *props,
        "-cp",
        java_classpath(),
        main_class,
        *args,
    ]


class _ClassDataSharing:
    """A dynamic class-data-sharing archive per main class, beside the interop jar.

    Loading and verifying the Kafka classes is most of a short program's CPU: with the
    archive a client program starts in about half the CPU time. The first run of a main class
    that exits (not SIGKILL) writes the archive; later runs map it. The key covers the java
    binary and both jar folders' markers, so new jars get a new archive instead of a stale one
    the JVM would silently refuse (``scripts/install-kafka`` also removes old ones).
    """

    _QUIET = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")

    def __init__(self, main_class: str) -> None:
        missing = java_missing()
        if missing is not None:
            raise JavaError(missing)
        java = os.path.realpath(shutil.which("java") or "java")
        markers = [
            (folder / ".complete").read_text().strip()
            for folder in (kafka_libs_dir(), interop_dir())
        ]
        key = f"{java}:{os.stat(java).st_mtime_ns}:{java_classpath()}:{markers}:{main_class}"
        digest = hashlib.sha256(key.encode()).hexdigest()[:16]
        self.archive = interop_dir() / f"{main_class.rsplit('.', 1)[-1]}-{digest}.jsa"
        self.dump: Path | None = None

    def flags(self) -> list[str]:
        if self.archive.exists():
            return [f"-XX:SharedArchiveFile={self.archive}", *self._QUIET]
        self.dump = self.archive.with_name(f"{self.archive.name}.{uuid.uuid4().hex}.tmp")
        return [f"-XX:ArchiveClassesAtExit={self.dump}", *self._QUIET]

    def finish(self) -> None:
        """Adopt the archive the JVM wrote at exit; a killed JVM leaves none (or a torn one)."""
        dump, self.dump = self.dump, None
        if dump is None:
            return
        if dump.exists() and dump.stat().st_size > 0:
            os.replace(dump, self.archive)
        else:
            dump.unlink(missing_ok=True)

    def discard(self) -> None:
        if self.dump is not None:
            self.dump.unlink(missing_ok=True)
            self.dump = None


def parse_json_lines(text: str) -> list[JsonLine]:
    """The JSON objects among ``text``'s lines; anything else a library printed is skipped."""
    found: list[JsonLine] = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                found.append(value)
    return found


@dataclass(frozen=True)
class JavaResult:
    """What a finished Java program printed, and how it exited."""

    returncode: int
    stdout: str
    stderr: str

    def json_lines(self) -> list[JsonLine]:
        return parse_json_lines(self.stdout)


def run_java(
    main_class: str,
    *args: str,
    timeout_s: float = 120.0,
    heap_mb: int = 256,
    jvm_options: Sequence[str] = (),
    properties: Mapping[str, str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    check: bool = True,
) -> JavaResult:
    """Run ``main_class`` to completion; with ``check``, a non-zero exit raises ``JavaError``."""
    sharing = _ClassDataSharing(main_class)
    command = java_command(
        main_class,
        *args,
        heap_mb=heap_mb,
        jvm_options=[*sharing.flags(), *jvm_options],
        properties=properties,
    )
    try:
        done = subprocess.run(
            [*_die_with_parent(), *command],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        sharing.discard()
        stdout = _text(exc.stdout)
        stderr = _text(exc.stderr)
        raise JavaError(
            f"{main_class} timed out after {timeout_s:.0f} s\n--- stdout ---\n"
            f"{stdout[-4000:]}\n--- stderr ---\n{stderr[-8000:]}"
        ) from None
    sharing.finish()
    result = JavaResult(done.returncode, done.stdout, done.stderr)
    if check and done.returncode != 0:
        raise JavaError(
            f"{main_class} exited with {done.returncode}\n--- stdout ---\n"
            f"{done.stdout[-4000:]}\n--- stderr ---\n{done.stderr[-8000:]}"
        )
    return result


def _text(data: bytes | str | None) -> str:
    if data is None:
        return ""
    return data if isinstance(data, str) else data.decode(errors="replace")


class JavaProcess:
    """A long-running Java program (a Streams app, a Connect worker) in the background.

    Its stdout and stderr go to files under ``workdir`` (named after ``name``), so a test can
    read the JSON lines printed so far, wait for one, and ``kill()`` the JVM (SIGKILL, as a
    crash) or ``stop()`` it (SIGTERM, so shutdown hooks run; SIGKILL after a timeout). The JVM
    dies with the thread that started it, so a test run killed hard leaves none behind.
    """

    def __init__(
        self,
        main_class: str,
        *args: str,
        workdir: Path,
        name: str | None = None,
        heap_mb: int = 256,
        jvm_options: Sequence[str] = (),
        properties: Mapping[str, str] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.main_class = main_class
        self.args = args
        self.workdir = workdir
        self.name = name or main_class.rsplit(".", 1)[-1]
        self.heap_mb = heap_mb
        self.jvm_options = tuple(jvm_options)
        self.properties = dict(properties or {})
        self.env = dict(env or {})
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._sharing: _ClassDataSharing | None = None

    @property
    def stdout_path(self) -> Path:
        return self.workdir / f"{self.name}.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / f"{self.name}.stderr"

    def start(self) -> JavaProcess:
        """Start the JVM; output of earlier runs is kept (appended to), so nothing is lost."""
        if self.running():
            raise JavaError(f"{self.name} is already running")
        self._exited()  # a run that ended by itself and was never waited for
        self._sharing = _ClassDataSharing(self.main_class)
        command = java_command(
            self.main_class,
            *self.args,
            heap_mb=self.heap_mb,
            jvm_options=[*self._sharing.flags(), *self.jvm_options],
            properties=self.properties,
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.stdout_path.open("ab") as stdout, self.stderr_path.open("ab") as stderr:
            self.process = subprocess.Popen(
                [*_die_with_parent(), *command],
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=self.workdir,
                env={**os.environ, **self.env},
            )
        self.starts += 1
        return self

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def kill(self) -> None:
        """SIGKILL: no shutdown hook, no flush, no commit — a crash."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self._exited()

    def _exited(self) -> None:
        if self._sharing is not None:
            if self.process is not None and self.process.returncode == -signal.SIGKILL:
                self._sharing.discard()
            else:
                self._sharing.finish()
            self._sharing = None

    def stop(self, timeout_s: float = _STOP_TIMEOUT_S) -> int | None:
        """SIGTERM so the program closes cleanly; SIGKILL if it has not exited in time."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._exited()
        return self.process.returncode

    def wait(self, timeout_s: float) -> int:
        """Wait for the program to exit by itself; raise ``JavaError`` if it does not."""
        assert self.process is not None, "start() first"
        try:
            code = self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise JavaError(
                f"{self.name} still running after {timeout_s:.0f} s\n" + self.logs_tail()
            ) from None
        self._exited()
        return code

    def json_lines(self) -> list[JsonLine]:
        """Every JSON line printed so far, over all runs."""
        try:
            text = self.stdout_path.read_text(errors="replace")
        except FileNotFoundError:
            return []
        return parse_json_lines(text)

    def wait_for(
        self,
        condition: Callable[[list[JsonLine]], bool],
        timeout_s: float = 60.0,
        what: str = "the expected output",
    ) -> list[JsonLine]:
        """Poll the JSON lines until ``condition`` holds; fail fast if the JVM exits."""
        deadline = time.monotonic() + timeout_s
        while True:
            lines = self.json_lines()
            if condition(lines):
                return lines
            if not self.running():
                raise JavaError(
                    f"{self.name} exited ({self.returncode}) before {what}\n" + self.logs_tail()
                )
            if time.monotonic() > deadline:
                raise JavaError(
                    f"timed out after {timeout_s:.0f} s waiting for {what}\n" + self.logs_tail()
                )
            time.sleep(_POLL_S)

    def logs_tail(self, lines: int = 60) -> str:
        return (
            f"==== {self.name} stdout {self.stdout_path} ====\n"
            + _tail(self.stdout_path, lines // 3)
            + f"==== {self.name} stderr {self.stderr_path} ====\n"
            + _tail(self.stderr_path, lines)
        )

    def __enter__(self) -> JavaProcess:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
