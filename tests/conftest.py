"""Shared fixtures. Airflow's environment is set here, before anything imports ``airflow``."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRM_SHARED_DIR", ROOT.parent / "shared"))

_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="crm-airflow-home-"))
os.environ.setdefault("AIRFLOW_HOME", str(_AIRFLOW_HOME))
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(_AIRFLOW_HOME / "plugins"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{_AIRFLOW_HOME / 'airflow.db'}")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared``: the captured Odoo 17 data and the specs (read-only)."""
    if not SHARED.exists():
        pytest.fail(f"shared data not found at {SHARED} (set CRM_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def private_pg():
    """One private PostgreSQL cluster for the whole session (never a mock)."""
    from crm_sandbox.pg import PrivatePostgres

    pg = PrivatePostgres().start()
    yield pg
    pg.stop()


@pytest.fixture
def state_db(private_pg, monkeypatch):
    """A fresh, empty database on the private cluster, wired as ``crm_migration_state``."""
    import uuid

    import psycopg2

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(private_pg.dsn(dbname="postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    conn_json = private_pg.airflow_conn.replace(f'"schema": "{private_pg.database}"', f'"schema": "{name}"')
    monkeypatch.setenv("AIRFLOW_CONN_CRM_MIGRATION_STATE", conn_json)
    yield {"dbname": name, "dsn": private_pg.dsn(dbname=name), "conn_json": conn_json}
    with admin.cursor() as cur:
        cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


# ---- Odoo targets: the sandbox and the real Odoo 17 server (one test body, both targets) ------------------
# The real servers are ../shared/odoo17-server/odoo-server and ../shared/odoo19-server/odoo-server (or
# $ODOO17_SERVER / $ODOO19_SERVER), driven by crm_sandbox.targets.RealOdoo.

#: the Odoo targets the integration, engine and DAG suites run on; the real server is the judge
ODOO_TARGETS = ("sandbox", "odoo17")
#: the real servers a module may name as well (``odoo19``: JSON-2 with an API key); the summary counts each
REAL_SERVERS = ("odoo17", "odoo19")

_REAL: dict = {}


def _real_server(name: str):
    """The real server ``name``, started once per test session; skipped when absent, failed under CI."""
    from crm_sandbox.targets import RealOdoo, RealOdooUnavailable

    if name not in _REAL:
        try:
            _REAL[name] = RealOdoo(name).start()
        except RealOdooUnavailable as exc:
            _REAL[name] = exc
    got = _REAL[name]
    if isinstance(got, Exception):
        ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
        if ci or not got.missing:
            pytest.fail(f"the real {name} server is needed: {got}", pytrace=False)
        pytest.skip(str(got))
    return got


@pytest.fixture(scope="session")
def real_odoo19():
    """The real Odoo 19 server (:class:`crm_sandbox.targets.RealOdoo`), started once per session; skipped
    when absent, failed under CI."""
    return _real_server("odoo19")


_DROP: list = []      # (server, database): dropped at the end of the session, not between tests


def pytest_sessionfinish(session, exitstatus):
    for server, db in _DROP:
        server.drop_db(db)
    for server in _REAL.values():
        if not isinstance(server, Exception):
            server.stop()


@pytest.fixture(scope="session")
def make_odoo_target():
    """``make(kind, label) -> (OdooTarget, close)``: a sandbox (``sandbox``: Odoo 17; ``sandbox19``: its Odoo 19
    mode), or a fresh database of a real server (``odoo17``, ``odoo19``; started once per session; its cases
    skipped where the server is absent, failed under CI). On 19 the target carries an API key (``api_key``, also
    its password): JSON-2."""
    from crm_sandbox.targets import SANDBOXES, OdooTarget, sandbox_target

    def make(kind: str, label: str = "t"):
        if kind in SANDBOXES:
            return sandbox_target(kind)
        real = _real_server(kind)
        db = real.new_db(label)
        # 19+: JSON-2 needs an API key (about 2.5 s: a second Odoo process); the key is the password too
        key = real.api_key(db) if real.version >= 19 else None
        target = OdooTarget(kind, real.url, db, version=real.version, password=key or "admin", api_key=key)
        return target, lambda: _DROP.append((real, db))

    return make


@pytest.fixture(scope="module", params=ODOO_TARGETS)
def odoo_target(request, make_odoo_target):
    """The Odoo of this test module, on each target in turn: a sandbox, or a fresh database of a real server."""
    label = "t_" + request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")[:30]
    target, close = make_odoo_target(request.param, label)
    yield target
    close()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    """How many cases ran on each real server (``make test`` prints it)."""
    for name in REAL_SERVERS:
        counts = {}
        for outcome in ("passed", "failed", "error", "skipped"):
            counts[outcome] = sum(1 for r in terminalreporter.stats.get(outcome, [])
                                  if f"[{name}" in r.nodeid or f"-{name}" in r.nodeid)
        terminalreporter.write_line(f"real {name} server: {counts['passed']} cases passed, {counts['failed']} failed, "
                                    f"{counts['error']} errors, {counts['skipped']} skipped")


# ---- one engine world: a state DB of its own, a source sandbox, an Odoo target, a Pipeline ------------------

#: per source: its connection id's environment variable and the sandbox's connection JSON
SOURCE_CONNS = {
    "apto": ("AIRFLOW_CONN_APTO_DEFAULT", lambda srv: srv.state.airflow_conn(srv.url, "client_credentials")),
    "link_app": ("AIRFLOW_CONN_LINK_APP_DEFAULT", lambda srv: srv.state.airflow_conn(srv.url)),
}


@pytest.fixture(scope="session")
def pair_pipeline(private_pg):
    """``with pair_pipeline(pair, source, target, run_id, spec=None) as pipe:`` a :class:`Pipeline` of ``pair``
    (``apto_to_odoo``, ``link_app_to_odoo``; or ``spec``) over the source sandbox server ``source`` and the
    Odoo ``target``, on a fresh state database, its schema prepared in ``run_id``; the connections are set
    for the block and the database dropped after."""
    import contextlib
    import json
    import uuid

    import psycopg2

    @contextlib.contextmanager
    def make(pair, source, target, run_id: str, spec=None, transport: str = "xmlrpc"):
        from crm_migration.engine.pipeline import Pipeline
        from crm_migration.hooks.odoo import OdooHook
        from crm_migration.hooks.state import MigrationStateHook
        from crm_migration.mapping.spec import load_pair
        from crm_migration.operators.tasks import SOURCES, _load

        spec = spec or load_pair(pair)
        hook_path, source_path, _pool = SOURCES[spec.source]
        env, conn = SOURCE_CONNS[spec.source]
        dbname = f"t_{uuid.uuid4().hex[:12]}"
        admin = psycopg2.connect(private_pg.dsn(dbname="postgres"))
        admin.autocommit = True
        with admin.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{dbname}"')
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("AIRFLOW_CONN_CRM_MIGRATION_STATE", private_pg.airflow_conn.replace(
                    f'"schema": "{private_pg.database}"', f'"schema": "{dbname}"'))
                mp.setenv(env, json.dumps(conn(source)))
                mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", target.conn_json(transport=transport))
                state = MigrationStateHook()
                state.migrate()
                odoo = OdooHook()
                pipe = Pipeline(spec, _load(source_path)(_load(hook_path)()), odoo, state)
                pipe.prepare_schema(run_id=run_id)
                try:
                    yield pipe
                finally:
                    state.close()
                    odoo.close()
        finally:
            with admin.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')
            admin.close()

    return make


@pytest.fixture(scope="session")
def apto_pipeline(pair_pipeline):
    """``with apto_pipeline(apto, target, run_id, spec=None) as pipe:`` :func:`pair_pipeline` of the Apto pair."""

    def make(apto, target, run_id: str, spec=None, transport: str = "xmlrpc"):
        return pair_pipeline("apto_to_odoo", apto, target, run_id, spec=spec, transport=transport)

    return make
