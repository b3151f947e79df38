"""Link app sandbox: the REST API of ``specs/link-app-api.md`` over a generated tenant, on loopback."""

from __future__ import annotations
