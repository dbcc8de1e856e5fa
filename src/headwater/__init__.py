"""Headwater: real-time data ingestion on the Kafka protocol, in one Python package."""

__version__ = "0.1.0"

__all__ = ["__version__"]
