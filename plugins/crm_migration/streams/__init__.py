"""Declarative source streams: object, fields or endpoint, replication key, paging."""

from __future__ import annotations

from crm_migration.streams.soql import SoqlStream, StreamSpecError, stream_from_spec

__all__ = ["SoqlStream", "StreamSpecError", "stream_from_spec"]
