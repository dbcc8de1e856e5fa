"""A hostile client: mutated copies of real requests, each sent on its own connection.

Shared by the end-to-end test (tests/test_hostile_clients.py) and the long run
(bench/hostile.py). Mutations are those an attacker tries first: flipped bits, boundary
integers over length fields, truncated frames, wrong API versions, bogus size prefixes, random
bytes and splices of two requests. Everything is drawn from one seeded ``random.Random``, so a
run is repeated exactly by its seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import random
import struct
from collections import Counter
from pathlib import Path

CORPUS = Path(__file__).parent / "corpus"
_INTERESTING_INTS = (-1, -2, 0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0x8000, 0x7FFFFFFF, -(2**31), 2**30)


def load_seeds(directory: Path = CORPUS) -> list[bytes]:
    """The recorded requests, each a size-prefixed frame."""
    seeds = [path.read_bytes() for path in sorted(directory.glob("*.bin"))]
    if not seeds:
        raise FileNotFoundError(f"no seed frames in {directory}")
    return seeds


def _with_prefix(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


class Mutator:
    """Makes one mutated frame (or stream) per call from the seeds."""

    def __init__(self, seeds: list[bytes], seed: int) -> None:
        self.seeds = seeds
        self.rng = random.Random(seed)

    def __call__(self) -> tuple[str, bytes]:
        rng = self.rng
        body = bytearray(rng.choice(self.seeds)[4:])
        kind = rng.choice(
            (
                "bitflip",
                "bitflip",
                "int",
                "int",
                "byte",
                "truncate",
                "version",
                "prefix",
                "random",
                "splice",
                "insert",
                "delete",
            )
        )
        if kind == "bitflip":
            for _ in range(rng.randint(1, 8)):
                at = rng.randrange(len(body))
                body[at] ^= 1 << rng.randrange(8)
        elif kind == "int":
            for _ in range(rng.randint(1, 3)):
                width = rng.choice((1, 2, 4))
                at = rng.randrange(max(1, len(body) - width))
                value = rng.choice(_INTERESTING_INTS) & ((1 << (8 * width)) - 1)
                body[at : at + width] = value.to_bytes(width, "big")
        elif kind == "byte":
            body[rng.randrange(len(body))] = rng.choice((0x00, 0xFF, 0x7F, 0x80, 0x01))
        elif kind == "truncate":
            body = body[: rng.randrange(len(body))]
            if rng.random() < 0.5:  # keep the original size prefix: a frame that never ends
                return kind, struct.pack(">i", len(body) + rng.randint(1, 4096)) + bytes(body)
        elif kind == "version":
            struct.pack_into(">h", body, 2, rng.choice((rng.randrange(20), 99, -1, 0x7FFF)))
        elif kind == "prefix":
            return kind, struct.pack(">i", rng.choice(_INTERESTING_INTS)) + bytes(body)
        elif kind == "random":
            body = bytearray(rng.randbytes(rng.randrange(4, 256)))
        elif kind == "splice":
            other = rng.choice(self.seeds)[4:]
            cut = rng.randrange(len(body))
            body = body[:cut] + other[rng.randrange(len(other)) :]
        elif kind == "insert":
            at = rng.randrange(len(body))
            body[at:at] = rng.randbytes(rng.randint(1, 16))
        else:
            at = rng.randrange(len(body))
            del body[at : at + rng.randint(1, 16)]
        return kind, _with_prefix(bytes(body))


@dataclasses.dataclass
class Outcome:
    """What the broker did with each hostile connection."""

    answered: int = 0  # sent at least one response frame
    closed: int = 0  # closed the connection without answering
    waiting: int = 0  # neither within the client's patience (a long poll, an unfinished frame)
    refused: int = 0  # could not connect at all
    by_kind: Counter[str] = dataclasses.field(default_factory=Counter)

    @property
    def total(self) -> int:
        return self.answered + self.closed + self.waiting + self.refused


async def send_one(
    host: str, port: int, data: bytes, patience_s: float, outcome: Outcome, kind: str
) -> None:
    """Send ``data`` on a fresh connection; record whether it was answered, closed or left."""
    try:
        reader, writer = await asyncio.open_connection(host, port)
    except OSError:
        outcome.refused += 1
        return
    try:
        writer.write(data)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        try:
            async with asyncio.timeout(patience_s):
                first = await reader.read(4)
        except TimeoutError:
            outcome.waiting += 1
            outcome.by_kind[f"waiting:{kind}"] += 1
            return
        except ConnectionError:
            first = b""
        if first:
            outcome.answered += 1
        else:
            outcome.closed += 1
    finally:
        writer.transport.abort()


async def run_hostile(
    host: str,
    port: int,
    frames: int,
    seed: int,
    concurrency: int = 16,
    patience_s: float = 2.0,
    seeds: list[bytes] | None = None,
) -> Outcome:
    """Send ``frames`` mutated frames, ``concurrency`` connections at a time."""
    mutate = Mutator(seeds or load_seeds(), seed)
    outcome = Outcome()
    queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue(concurrency * 4)

    async def worker() -> None:
        while (item := await queue.get()) is not None:
            kind, data = item
            outcome.by_kind[kind] += 1
            await send_one(host, port, data, patience_s, outcome, kind)

    async with asyncio.TaskGroup() as group:
        for _ in range(concurrency):
            group.create_task(worker())
        for _ in range(frames):
            await queue.put(mutate())
        for _ in range(concurrency):
            await queue.put(None)
    return outcome
