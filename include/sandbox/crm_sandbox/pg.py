"""A private PostgreSQL cluster on a free loopback port, for tests, benchmarks and the demo.

``initdb`` refuses to run as root, so when the caller is root every server binary runs as the
``postgres`` system user (``runuser -u postgres --``) and the data directory is handed to that user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


class PostgresNotFound(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def find_bindir() -> Path:
    """Return the directory holding ``initdb`` and ``pg_ctl`` (newest version first)."""
    if env := os.environ.get("PG_BINDIR"):
        return Path(env)
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    for cand in [*candidates, *(os.path.dirname(p) for p in filter(None, [shutil.which("initdb")]))]:
        if os.path.exists(os.path.join(cand, "initdb")) and os.path.exists(os.path.join(cand, "pg_ctl")):
            return Path(cand)
    raise PostgresNotFound(
        "PostgreSQL server binaries not found (initdb, pg_ctl); install the 'postgresql' package "
        "(apt-get install -y postgresql) or set PG_BINDIR"
    )


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the one way the project picks a port for a server it starts)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ident(name: str) -> str:
    """``name`` as it may stand between double quotes in SQL: a database name of ours, never a user's input."""
    if not name or '"' in name or "\x00" in name:
        raise ValueError(f"not a database name: {name!r}")
    return name


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster in ``datadir`` listening on 127.0.0.1:``port``.

    :param datadir: where the cluster lives; a fresh temp dir when None (removed on ``stop``).
    :param fast: trade durability for speed (fsync off): right for tests, wrong for real data.
    """

    datadir: Path | None = None
    port: int = 0
    database: str = "crm_state"
    user: str = "postgres"
    fast: bool = True
    _tmp: str | None = field(default=None, repr=False)
    _bindir: Path | None = field(default=None, repr=False)

    @property
    def uri(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    @property
    def airflow_conn(self) -> str:
        """The connection to the cluster's own database in Airflow's JSON form, for
        ``AIRFLOW_CONN_CRM_MIGRATION_STATE``."""
        return self.airflow_conn_for(self.database)

    def airflow_conn_for(self, database: str) -> str:
        """The connection to ``database`` of this cluster in Airflow's JSON form (``AIRFLOW_CONN_<ID>``)."""
        import json

        return json.dumps({"conn_type": "postgres", "host": "127.0.0.1", "port": self.port,
                           "login": self.user, "schema": database})

    def new_database(self, name: str) -> str:
        """A fresh, empty database ``name`` on this cluster (one of that name, say left by an earlier session, is
        dropped first); returns its connection in Airflow's JSON form (``dsn(dbname=name)`` reaches it too)."""
        with self._admin() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{_ident(name)}" WITH (FORCE)')
            cur.execute(f'CREATE DATABASE "{_ident(name)}"')
        return self.airflow_conn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop the database ``name`` (gone already: nothing to do), closing the connections still open to it."""
        with self._admin() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{_ident(name)}" WITH (FORCE)')

    @contextlib.contextmanager
    def _admin(self) -> Iterator:
        """A cursor on the ``postgres`` database, in autocommit (``CREATE``/``DROP DATABASE`` refuse a transaction)."""
        import psycopg2

        conn = psycopg2.connect(self.dsn(dbname="postgres"))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                yield cur
        finally:
            conn.close()

    def dsn(self, **kw: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={self.user} dbname={kw.get('dbname', self.database)}"

    def _as_owner(self, args: list[str]) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return args

    def _run(self, args: list[str], **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self._as_owner(args), check=True, capture_output=True, text=True, **kw)

    def start(self) -> PrivatePostgres:
        self._bindir = find_bindir()
        if self.datadir is None:
            self._tmp = tempfile.mkdtemp(prefix="crm-pg-")
            self.datadir = Path(self._tmp) / "data"
        self.datadir = Path(self.datadir)
        root = self.datadir.parent
        root.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            pg = pwd.getpwnam("postgres")
            os.chown(root, pg.pw_uid, pg.pw_gid)
            # the postgres user must be able to reach the directory
            p = root
            while p != p.parent:
                with contextlib.suppress(OSError):
                    mode = p.stat().st_mode
                    if not mode & 0o001:
                        os.chmod(p, mode | 0o001)
                p = p.parent
        fresh = not (self.datadir / "PG_VERSION").exists()
        if fresh:
            self._run([str(self._bindir / "initdb"), "-D", str(self.datadir), "-U", self.user,
                       "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync"])
        if not self.port:
            self.port = free_port()
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.datadir}"
        if self.fast:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        opts += " -c max_connections=200"
        self._run([str(self._bindir / "pg_ctl"), "-D", str(self.datadir), "-o", opts,
                   "-l", str(self.datadir.parent / "postgres.log"), "-w", "-t", "60", "start"])
        self._wait_ready()
        self._ensure_database()
        return self

    def _wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def _ensure_database(self) -> None:
        with self._admin() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (self.database,))
            if not cur.fetchone():
                cur.execute(f'CREATE DATABASE "{_ident(self.database)}"')

    def stop(self, *, remove: bool | None = None) -> None:
        if self._bindir and self.datadir and (self.datadir / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._run([str(self._bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "fast", "-w", "stop"])
        if remove or (remove is None and self._tmp):
            shutil.rmtree(self._tmp or self.datadir.parent, ignore_errors=True)

    def __enter__(self) -> PrivatePostgres:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


@contextlib.contextmanager
def private_postgres(**kw) -> Iterator[PrivatePostgres]:
    """Start a throw-away cluster, yield it, stop and remove it."""
    pg = PrivatePostgres(**kw)
    pg.start()
    try:
        yield pg
    finally:
        pg.stop()


def main(argv: list[str] | None = None) -> int:
    """Run a private PostgreSQL in the foreground until interrupted."""
    import argparse
    import signal

    ap = argparse.ArgumentParser(prog="crm-sandbox postgres")
    ap.add_argument("--datadir", type=Path, default=None)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args(argv)
    pg = PrivatePostgres(datadir=args.datadir, port=args.port, fast=False).start()
    print(f"PostgreSQL ready: {pg.uri}", flush=True)
    print(f"export AIRFLOW_CONN_CRM_MIGRATION_STATE='{pg.airflow_conn}'", flush=True)
    try:
        signal.sigwait({signal.SIGINT, signal.SIGTERM})
    finally:
        pg.stop()
    return 0
