"""Odoo targets for tests and the demo: the sandbox (``sandbox``: Odoo 17 over XML-RPC/JSON-RPC; ``sandbox19``: its
Odoo 19 mode, the captured 19.0 schema, over JSON-2 with an API key), or a real Odoo server
(``../shared/odoo17-server``, ``../shared/odoo19-server``).

Both ship a launcher script, ``odoo-server start | new-db NAME | drop-db NAME | api-key DB | status |
stop``. This module finds the script, starts the server once, hands out fresh databases, and stops
the server at the end only if it started it. The sandbox stays what a fresh machine has; these are
the judge of what Odoo does.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[3]

#: target name -> (environment variable naming the launcher, its folder under ../shared)
SERVERS = {"odoo17": ("ODOO17_SERVER", "odoo17-server"), "odoo19": ("ODOO19_SERVER", "odoo19-server")}
#: sandbox target name -> the Odoo version it emulates
SANDBOXES = {"sandbox": 17, "sandbox19": 19}


class RealOdooUnavailable(RuntimeError):
    """The launcher is missing (``missing``), or the server did not start (the message says why)."""

    def __init__(self, message: str, *, missing: bool = False) -> None:
        super().__init__(message)
        self.missing = missing


class OdooTarget:
    """One Odoo a test module or the demo talks to: the sandbox (``server`` is the sandbox, with its
    fault injection and admin endpoints) or a real server (``server`` is None; a database of its own)."""

    def __init__(self, kind: str, url: str, db: str, *, server: Any = None, version: int = 17,
                 login: str = "admin", password: str = "admin", api_key: str | None = None) -> None:
        self.kind, self.url, self.db, self.server, self.version = kind, url, db, server, version
        self.login, self.password, self.api_key = login, password, api_key

    @property
    def transport(self) -> str:
        """The transport a test names when it names one: ``json2`` with an API key (19+), else ``jsonrpc``."""
        return "json2" if self.api_key else "jsonrpc"

    @property
    def real(self) -> bool:
        return self.server is None

    def conn(self, **extra: Any) -> dict[str, Any]:
        """The ``odoo`` connection in Airflow's JSON form (``extra``: transport, fallback_user ...)."""
        return {"conn_type": "odoo", "host": self.url, "schema": self.db, "login": self.login,
                "password": self.password, "extra": dict(extra)}

    def conn_json(self, **extra: Any) -> str:
        return json.dumps(self.conn(**extra))

    def rpc(self) -> Any:
        """A small XML-RPC client (:class:`crm_sandbox.odoo.testing.Rpc`) on this database."""
        from crm_sandbox.odoo.testing import Rpc

        return Rpc(self.url, db=self.db, password=self.password)

    def sandbox_only(self, why: str) -> None:
        """Skip the calling test on a real server (fault injection, admin endpoints are the sandbox's own)."""
        if self.real:
            import pytest

            pytest.skip(f"sandbox only: {why}")

    def __repr__(self) -> str:
        return f"OdooTarget({self.kind}, {self.url}, db={self.db})"


def sandbox_target(kind: str = "sandbox") -> tuple[OdooTarget, Any]:
    """``(target, close)``: a fresh Odoo sandbox on loopback, database ``crmtest``. ``sandbox19`` runs its Odoo 19
    mode (the 19.0 schema and default records captured from the real server) with an API key for admin, which
    the target carries (JSON-2; the key is the password too), as a real 19 target does."""
    from crm_sandbox.odoo.server import serve

    version = SANDBOXES[kind]
    key = secrets.token_hex(20) if version >= 19 else None
    server = serve(port=0, version=version, api_key=key)
    return OdooTarget(kind, server.url, "crmtest", server=server, version=version, password=key or "admin",
                      api_key=key), server.stop


def shared_dir() -> Path:
    return Path(os.environ.get("CRM_SHARED_DIR", ROOT.parent / "shared"))


def launcher(name: str) -> Path:
    """The ``odoo-server`` script of target ``name`` (``odoo17``), from ``$ODOO17_SERVER`` or ``../shared``."""
    env, folder = SERVERS[name]
    return Path(os.environ.get(env) or shared_dir() / folder / "odoo-server")


@dataclass
class RealOdoo:
    """One real Odoo server: started once, one database per user (test module, demo run).

    :param home: a server of its own in this folder (``odoo-server --dir``), apart from the shared one in the
        launcher's default home; :meth:`destroy` removes it.
    :param workers: Odoo prefork workers when this object starts it (``ODOO17_WORKERS``; 0: one threaded process).
    """

    name: str = "odoo17"
    info: dict[str, Any] = field(default_factory=dict)
    started_here: bool = False
    home: Path | None = None
    workers: int = 0

    @property
    def script(self) -> Path:
        return launcher(self.name)

    @property
    def available(self) -> bool:
        return self.script.is_file() and os.access(self.script, os.X_OK)

    @property
    def url(self) -> str:
        return str(self.info["url"])

    @property
    def version(self) -> int:
        return int(self.name.removeprefix("odoo"))

    def _run(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        env = None
        if self.workers:
            env = {**os.environ, f"{self.name.upper()}_WORKERS": str(self.workers)}
        home = ["--dir", str(self.home)] if self.home else []
        return subprocess.run([str(self.script), *args, *home], capture_output=True, text=True, timeout=timeout,
                              check=False, env=env)

    def start(self) -> RealOdoo:
        """Start the server (a no-op when it already runs); raises :class:`RealOdooUnavailable`."""
        if not self.available:
            raise RealOdooUnavailable(f"real {self.name} server not found at {self.script} "
                                      f"(set {SERVERS[self.name][0]} or CRM_SHARED_DIR)", missing=True)
        if self.info:
            return self
        self.started_here = self._run("status", timeout=60).returncode != 0
        proc = self._run("start")
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
            raise RealOdooUnavailable(f"{self.script} start failed (exit {proc.returncode}):\n{tail}")
        self.info = json.loads(lines[-1])
        return self

    def new_db(self, prefix: str = "t") -> str:
        """A fresh database copied from the template (about a second); returns its name."""
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"[:60]
        proc = self._run("new-db", name, timeout=180)
        if proc.returncode != 0:
            raise RealOdooUnavailable(f"{self.name} new-db {name} failed: {proc.stderr.strip()[-500:]}")
        return name

    def copy_db(self, source: str, prefix: str = "t") -> str:
        """A fresh database copied from ``source``, one of this server's databases nobody uses (its data, and its
        API keys, stored hashed: a key made for ``source`` opens the copy too); over the server's own ``db``
        service, as ``new-db`` does it from the template. Returns its name."""
        import xmlrpc.client

        name = f"{prefix}_{uuid.uuid4().hex[:8]}"[:60]
        try:
            xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/db").duplicate_database(
                self.info.get("master_password", "admin"), source, name)
        except (xmlrpc.client.Error, OSError) as exc:
            raise RealOdooUnavailable(f"{self.name}: copying {source} to {name} failed: {exc}") from exc
        return name

    def api_key(self, db: str) -> str:
        proc = self._run("api-key", db, timeout=180)
        if proc.returncode != 0:
            raise RealOdooUnavailable(f"{self.name} api-key {db} failed: {proc.stderr.strip()[-500:]}")
        return proc.stdout.strip()

    def drop_db(self, db: str) -> None:
        self._run("drop-db", db, timeout=120)

    def drop_dbs(self, dbs: list[str], *, at_once: int = 4) -> None:
        """Drop the databases ``dbs`` (one already gone is no error), ``at_once`` at a time over the server's own
        ``db`` service: what ``drop-db`` does, without a shell and a Python started per database."""
        import xmlrpc.client
        from concurrent.futures import ThreadPoolExecutor

        def drop(db: str) -> None:
            with contextlib.suppress(xmlrpc.client.Error, OSError):
                xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/db").drop(
                    self.info.get("master_password", "admin"), db)

        with ThreadPoolExecutor(max_workers=at_once) as pool:
            list(pool.map(drop, dbs))

    def stop(self) -> None:
        """Stop the server if this object started it (a server someone else runs is left running)."""
        if self.started_here:
            self._run("stop", timeout=120)
            self.started_here = False
        self.info = {}

    def destroy(self) -> None:
        """Stop the server of :attr:`home` and delete that folder (never the shared server's default home)."""
        if self.home is None:
            raise ValueError("destroy() is for a server of its own (home=...), not the shared one")
        self._run("destroy", timeout=180)
        self.started_here, self.info = False, {}
