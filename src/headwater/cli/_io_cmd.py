"""``headwater produce`` and ``headwater consume``: records from and to the terminal."""

from __future__ import annotations

import base64
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, TextIO

import typer

from headwater.cli._common import Bootstrap, fail
from headwater.client import ConsumedRecord, DeliveryError, produce_all
from headwater.client import consume as consume_records

_BOOT = "127.0.0.1:9092"


def _lines(source: TextIO, key_separator: str | None) -> Iterator[tuple[bytes | None, bytes]]:
    for raw in source:
        line = raw.rstrip("\n")
        if not line:
            continue
        if key_separator is not None and key_separator in line:
            key, value = line.split(key_separator, 1)
            yield key.encode(), value.encode()
        else:
            yield None, line.encode()


def produce(
    topic: Annotated[str, typer.Argument(help="Topic to write to.")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file", "-f", help="Read records from this file instead of stdin, one per line."
        ),
    ] = None,
    key_separator: Annotated[
        str | None,
        typer.Option(
            "--key-separator",
            "-k",
            help="Split each line into key and value at the first "
            "occurrence of this string, e.g. ':'. Without it records have no key.",
        ),
    ] = None,
    partition: Annotated[
        int | None,
        typer.Option(
            help="Write every record to this partition (default: the client's partitioner)."
        ),
    ] = None,
    profile: Annotated[
        str, typer.Option(help="Producer profile: durable, low-latency or high-throughput.")
    ] = "durable",
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Produce one record per input line and wait until all are acknowledged."""
    try:
        if file is not None:
            with file.open() as handle:
                count = produce_all(
                    bootstrap,
                    topic,
                    _lines(handle, key_separator),
                    profile=profile,
                    partition=partition,
                )
        else:
            count = produce_all(
                bootstrap,
                topic,
                _lines(sys.stdin, key_separator),
                profile=profile,
                partition=partition,
            )
    except (DeliveryError, ValueError, OSError) as exc:
        raise fail(f"produce to {topic!r} failed: {exc}") from None
    typer.echo(f"produced {count} record(s) to {topic}", err=True)


def _text(data: bytes | None) -> str | None:
    if data is None:
        return None
    try:
        return data.decode()
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(data).decode()


def _render(record: ConsumedRecord, as_json: bool, key_separator: str | None) -> str:
    if as_json:
        return json.dumps(
            {
                "topic": record.topic,
                "partition": record.partition,
                "offset": record.offset,
                "timestamp": record.timestamp_ms,
                "key": _text(record.key),
                "value": _text(record.value),
                "headers": {k: _text(v) for k, v in record.headers},
            }
        )
    value = _text(record.value) or ""
    if key_separator is not None:
        return f"{_text(record.key) or ''}{key_separator}{value}"
    return value


def consume(
    topic: Annotated[str, typer.Argument(help="Topic to read.")],
    group: Annotated[
        str | None,
        typer.Option(
            "--group",
            "-g",
            help="Consume as a member of "
            "this group and commit offsets; without it "
            "nothing is committed.",
        ),
    ] = None,
    from_beginning: Annotated[
        bool, typer.Option(help="Start at the earliest offset (default without a group: the end).")
    ] = False,
    offset: Annotated[
        int | None, typer.Option(help="Start at this offset in every partition.")
    ] = None,
    timestamp: Annotated[
        int | None,
        typer.Option(help="Start at the first record at or after this time (ms since epoch)."),
    ] = None,
    partition: Annotated[
        list[int] | None, typer.Option(help="Read only this partition; repeatable.")
    ] = None,
    max_messages: Annotated[
        int | None, typer.Option("--max-messages", "-n", help="Stop after this many.")
    ] = None,
    timeout: Annotated[
        float | None, typer.Option(help="Stop after this many seconds without new records.")
    ] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json",
            help="One JSON object per record "
            "with topic, partition, offset, timestamp, key, "
            "value and headers.",
        ),
    ] = False,
    key_separator: Annotated[
        str | None, typer.Option("--key-separator", "-k", help="Print key<sep>value.")
    ] = None,
    bootstrap: Bootstrap = _BOOT,
) -> None:
    """Print records as they arrive (Ctrl-C stops)."""
    start = "beginning" if from_beginning or group is not None else "end"
    try:
        for record in consume_records(
            bootstrap,
            topic,
            group_id=group,
            start=start,
            offset=offset,
            timestamp_ms=timestamp,
            partitions=partition,
            max_records=max_messages,
            idle_timeout_s=timeout,
        ):
            typer.echo(_render(record, json_output, key_separator))
    except KeyboardInterrupt:
        pass
    except RuntimeError as exc:
        raise fail(str(exc)) from None
