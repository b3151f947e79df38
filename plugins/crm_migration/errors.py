"""The exception hierarchy: every error this package raises is a ``CrmMigrationError``.

Messages name the record and the field where there is one, and never carry a secret.
"""

from __future__ import annotations


class CrmMigrationError(Exception):
    """Base of every error raised by this package."""


class ConfigurationError(CrmMigrationError):
    """A connection, Param, Variable or mapping file is missing or invalid."""


class ApprovalRequired(ConfigurationError):
    """A run may not start: the mapping in force is not confirmed, or a full run has no approved sample diff.
    The message says which step (or Param) gives what is missing."""


class StateDBError(CrmMigrationError):
    """The state database refused an operation or its schema is not as expected."""


class MappingError(CrmMigrationError):
    """A source record could not be mapped; names the object, the record and the field."""

    def __init__(self, source_object: str, source_id: str, field: str, reason: str) -> None:
        self.source_object, self.source_id, self.field, self.reason = source_object, source_id, field, reason
        super().__init__(f"{source_object} {source_id}: field {field!r}: {reason}")
