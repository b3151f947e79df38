"""Declarative source streams: object, fields or endpoint, replication key, paging."""

from __future__ import annotations

from dataclasses import dataclass

from crm_migration.streams.soql import SoqlStream, StreamSpecError, stream_from_spec

__all__ = ["MISSING_STATUS", "MissingFile", "SoqlStream", "StreamSpecError", "stream_from_spec"]

#: download answers meaning the file is gone from the source: not a fault, retrying will not bring it back
MISSING_STATUS = frozenset({404, 410})


@dataclass(frozen=True)
class MissingFile:
    """What a source's ``blob`` returns for a file the source no longer has (its download answered 404
    Not Found or 410 Gone). Not empty bytes: the file is not created, it is dead-lettered with
    :attr:`reason`, and a later run that finds it back creates it.

    :param status: the HTTP status of the download.
    :param path: what was downloaded (API path or URL, no secret in it).
    """

    status: int
    path: str

    @property
    def reason(self) -> str:
        return f"file missing in the source (HTTP {self.status})"
