"""Sink connectors: a runtime that consumes topics as a group member and writes them out.

The runtime (``SinkRunner``) owns offsets, retries, the dead-letter topic and progress; sinks
only write batches. Sinks: SQL tables (SQLite, PostgreSQL), time-partitioned Parquet files on
local disk or S3, and a live DuckDB table that can be queried while it fills.
"""

from headwater.connect._duckdb import DuckDBSink, DuckDBSinkConfig
from headwater.connect._parquet import ParquetSink, ParquetSinkConfig
from headwater.connect._records import DecodeError, Decoder, Rejected, SinkRecord, decode_json
from headwater.connect._runtime import SinkRunner, SinkSettings
from headwater.connect._schema import Kind, SchemaMismatch
from headwater.connect._sink import BatchRejected, PartitionStart, Sink, TransientError
from headwater.connect._sql import SqlSink, SqlSinkConfig
from headwater.connect._sql_table import SqlMode, TableError
from headwater.connect._stats import PartitionProgress, SinkStats
from headwater.connect._writer import SinkFailed

__all__ = [
    "BatchRejected",
    "DecodeError",
    "Decoder",
    "DuckDBSink",
    "DuckDBSinkConfig",
    "Kind",
    "ParquetSink",
    "ParquetSinkConfig",
    "PartitionProgress",
    "PartitionStart",
    "Rejected",
    "SchemaMismatch",
    "Sink",
    "SinkFailed",
    "SinkRecord",
    "SinkRunner",
    "SinkSettings",
    "SinkStats",
    "SqlMode",
    "SqlSink",
    "SqlSinkConfig",
    "TableError",
    "TransientError",
    "decode_json",
]
