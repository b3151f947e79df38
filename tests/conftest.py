"""Shared fixtures. Airflow's environment is set here, before anything imports ``airflow``."""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the suite's own helper modules (``chromium``) importable by name (``importlib`` mode puts no folder on the path)
sys.path.append(str(Path(__file__).resolve().parent))
SHARED = Path(os.environ.get("CRM_SHARED_DIR", ROOT.parent / "shared"))

#: set in a pytest-xdist worker (``make test`` runs two): each worker has its own Airflow home and state DB
#: cluster; the real Odoo servers are shared, started under a lock and stopped by the controlling process
_WORKER = os.environ.get("PYTEST_XDIST_WORKER")
#: shared by the controlling process and its workers (inherited): who started which real server
_RUN_DIR = Path(os.environ.get("CRM_TEST_RUN_DIR") or tempfile.mkdtemp(prefix="crm-test-run-"))
os.environ["CRM_TEST_RUN_DIR"] = str(_RUN_DIR)


def _airflow_env(home: Path) -> dict[str, str]:
    return {"AIRFLOW_HOME": str(home), "AIRFLOW__CORE__PLUGINS_FOLDER": str(home / "plugins"),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}


_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="crm-airflow-home-"))
_INHERITED = os.environ.get("CRM_TEST_AIRFLOW_HOME")
for _key, _value in _airflow_env(_AIRFLOW_HOME).items():
    if _WORKER and _INHERITED and os.environ.get(_key) == _airflow_env(Path(_INHERITED))[_key]:
        os.environ[_key] = _value           # the controller's home: a worker gets its own
    else:
        os.environ.setdefault(_key, _value)
os.environ["CRM_TEST_AIRFLOW_HOME"] = str(_AIRFLOW_HOME)
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "INFO")
# a retried task waits 1 s, not 60 (read once, when crm_migration.dag_factory is first imported: a unit test may
# import it before a DAG suite sets its own environment)
os.environ.setdefault("CRM_MIGRATION_RETRY_DELAY_SECONDS", "1")

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

    name = f"t_{uuid.uuid4().hex[:12]}"
    conn_json = private_pg.new_database(name)
    monkeypatch.setenv("AIRFLOW_CONN_CRM_MIGRATION_STATE", conn_json)
    yield {"dbname": name, "dsn": private_pg.dsn(dbname=name), "conn_json": conn_json}
    private_pg.drop_database(name)


@pytest.fixture
def state(state_db):
    """A :class:`MigrationStateHook` on the fresh ``state_db``, its schema migrated; closed after."""
    from crm_migration.hooks.state import MigrationStateHook

    hook = MigrationStateHook()
    hook.migrate()
    yield hook
    hook.close()


# ---- Odoo targets: the sandbox and the real Odoo 17 server (one test body, both targets) ------------------
# The real servers are ../shared/odoo17-server/odoo-server and ../shared/odoo19-server/odoo-server (or
# $ODOO17_SERVER / $ODOO19_SERVER), driven by crm_sandbox.targets.RealOdoo.

#: the Odoo targets the integration, engine and DAG suites run on; the real servers are the judge. A module bound
#: to what a real Odoo 17 did (the replays of its captures) names its own ``ODOO_TARGETS``; the others are dropped
ODOO_TARGETS = ("sandbox", "odoo17", "odoo19")
#: the real servers a module may name as well (``odoo19``: JSON-2 with an API key); the summary counts each
REAL_SERVERS = ("odoo17", "odoo19")

_REAL: dict = {}


def _real_server(name: str):
    """The real server ``name``, started once per test session; skipped when absent, failed under CI."""
    from crm_sandbox.targets import RealOdoo, RealOdooUnavailable

    if name not in _REAL:
        try:
            with _lock(f"crm-{name}-start"):     # two workers must not start it twice
                server = RealOdoo(name).start()
            if server.started_here:               # the controlling process stops it when every worker is done
                (_RUN_DIR / f"started-{name}").touch()
                server.started_here = False
            _REAL[name] = server
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
    by_server: dict = {}
    for server, db in _DROP:
        by_server.setdefault(id(server), (server, []))[1].append(db)
    for server, dbs in by_server.values():      # a few at a time, over XML-RPC (a drop-db each took seconds)
        server.drop_dbs(dbs)
    if _WORKER:
        return
    from crm_sandbox.targets import RealOdoo

    for marker in sorted(_RUN_DIR.glob("started-*")):   # started by this run (any worker): stopped now
        RealOdoo(marker.name.removeprefix("started-"), started_here=True).stop()
        marker.unlink()


@contextlib.contextmanager
def _lock(name: str):
    """An exclusive lock across processes (pytest-xdist workers, parallel runs) on ``/tmp/<name>.lock``."""
    with open(Path(tempfile.gettempdir()) / f"{name}.lock", "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


@pytest.fixture(scope="session")
def make_odoo_target():
    """``make(kind, label, prepare=None) -> (OdooTarget, close)``: a sandbox (``sandbox``: Odoo 17; ``sandbox19``:
    its Odoo 19 mode), or a fresh database of a real server (``odoo17``, ``odoo19``; started once per session; its
    cases skipped where the server is absent, failed under CI). On 19 the target carries an API key (``api_key``,
    also its password): JSON-2. ``prepare(target)``, a module-level function: run once per session and server on a
    database the real targets are then copies of (what every test of a suite needs first, e.g. the key fields;
    a sandbox is not prepared)."""
    from crm_sandbox.targets import SANDBOXES, OdooTarget, sandbox_target

    sources: dict[tuple[str, str], tuple[str, str | None]] = {}    # (server, prepare's name) -> (database, key)

    def source(real, kind: str, prepare) -> tuple[str, str | None]:
        """A database of this session that no test uses, copied for each test's: on 19+ it holds an API key
        (``api-key``: a second Odoo process, seconds; made once, the copies carry it, stored hashed); ``prepare``
        (``prepare(target)``) has been run on it once."""
        name = getattr(prepare, "__name__", "") if prepare else ""
        if (kind, name) not in sources:
            if prepare:
                base, key = source(real, kind, None) if real.version >= 19 else (None, None)
                db = real.copy_db(base, f"src_{name}") if base else real.new_db(f"src_{name}")
                prepare(OdooTarget(kind, real.url, db, version=real.version, password=key or "admin", api_key=key))
            else:
                db = real.new_db(f"keyed_{_WORKER or 'main'}")
                key = real.api_key(db)
            _DROP.append((real, db))
            sources[(kind, name)] = (db, key)
        return sources[(kind, name)]

    def make(kind: str, label: str = "t", prepare=None):
        if kind in SANDBOXES:
            return sandbox_target(kind)
        real = _real_server(kind)
        if real.version >= 19 or prepare:
            # a copy (about a second) of the session's source database: JSON-2's API key and what ``prepare``
            # wrote come with it; the key is the password too
            src, key = source(real, kind, prepare)
            db = real.copy_db(src, label)
        else:
            db, key = real.new_db(label), None
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


#: the Odoo targets a test id may name (``test_x[odoo17]``, ``test_fault_case[odoo17-60-...]``)
_TARGET_IDS = frozenset({"sandbox", "sandbox19", "odoo17", "odoo19"})


def _xdist_group(nodeid: str) -> str:
    """A test module on one Odoo target: what one pytest-xdist worker runs whole (its module-scoped world built
    once, its tests in order)."""
    module, _, rest = nodeid.partition("::")
    params = rest[rest.find("[") + 1:-1].split("-") if rest.endswith("]") else []
    target = next((p for p in params if p in _TARGET_IDS), "")
    return f"{module}:{target}" if target else module


#: the slowest groups first (by path prefix), so that two workers end together: a DAG flow on a real server
#: takes minutes, a unit module a second (``--durations`` shows the order to keep here)
_FIRST = ("tests/dags/test_dag_runs.py", "tests/dags/test_link_app_dag_runs.py",
          "tests/integration/engine/test_link_app_pair.py", "tests/dags/", "tests/integration/engine/",
          "tests/integration/", "tests/")


def pytest_collection_modifyitems(config, items):
    """A module's own ``ODOO_TARGETS`` honoured; heavy modules first (a stable sort: a module's own order is
    kept); the same in every xdist worker."""
    kept, dropped = [], []
    for item in items:
        callspec = getattr(item, "callspec", None)
        target = callspec.params.get("odoo_target") if callspec else None
        wanted = getattr(item.module, "ODOO_TARGETS", None)
        (dropped if target and wanted is not None and target not in wanted else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept

    def rank(item) -> int:
        path = item.nodeid.split("::", 1)[0]
        return next((i for i, prefix in enumerate(_FIRST) if path.startswith(prefix)), len(_FIRST))

    items.sort(key=rank)


if importlib.util.find_spec("xdist"):
    def pytest_xdist_make_scheduler(config, log):
        """``make test`` (``-n 2 --dist loadscope``): each worker takes whole groups (:func:`_xdist_group`)."""
        from xdist.scheduler import LoadScopeScheduling

        # the groups in the order pytest_collection_modifyitems gave them (the slowest first), not xdist's
        # default reorder by number of tests (which would start a DAG flow of 15 tests after unit modules of 60)
        config.option.loadscopereorder = False

        class ModuleTargetScheduling(LoadScopeScheduling):
            def _split_scope(self, nodeid: str) -> str:
                return _xdist_group(nodeid)

        return ModuleTargetScheduling(config, log)


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

    @contextlib.contextmanager
    def make(pair, source, target, run_id: str, spec=None, transport: str | None = None):
        from crm_migration.engine.pipeline import Pipeline
        from crm_migration.hooks.odoo import OdooHook
        from crm_migration.hooks.state import MigrationStateHook
        from crm_migration.mapping.spec import load_pair
        from crm_migration.operators.tasks import SOURCES, _load

        spec = spec or load_pair(pair)
        hook_path, source_path, _pool = SOURCES[spec.source]
        env, conn = SOURCE_CONNS[spec.source]
        dbname = f"t_{uuid.uuid4().hex[:12]}"
        conn_json = private_pg.new_database(dbname)
        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setenv("AIRFLOW_CONN_CRM_MIGRATION_STATE", conn_json)
                mp.setenv(env, json.dumps(conn(source)))
                # XML-RPC, or JSON-2 where the target has an API key (Odoo 19)
                mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", target.conn_json(
                    transport=transport or ("json2" if target.api_key else "xmlrpc")))
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
            private_pg.drop_database(dbname)

    return make


@pytest.fixture(scope="session")
def apto_pipeline(pair_pipeline):
    """``with apto_pipeline(apto, target, run_id, spec=None) as pipe:`` :func:`pair_pipeline` of the Apto pair."""

    def make(apto, target, run_id: str, spec=None, transport: str | None = None):
        return pair_pipeline("apto_to_odoo", apto, target, run_id, spec=spec, transport=transport)

    return make


# ---- a state DB with runs in it (reports, the on-call view) --------------------------------------------------

#: the runs :func:`state_with_runs` records: (run id, pair, kind, mode, status, approved by)
SEEDED_RUNS = (
    ("manual__2026-12-01T10:00:00+00:00", "apto_to_odoo", "migrate", "sample", "success", "ci"),
    ("manual__2026-12-01T11:00:00+00:00", "apto_to_odoo", "migrate", "full", "success", "Jane Doe"),
    ("scheduled__2026-12-02T06:00:00+00:00", "apto_to_odoo", "delta", None, "failed", None),
    ("manual__2026-12-01T12:00:00+00:00", "link_app_to_odoo", "migrate", "sample", "running", None),
)
#: a dead letter's reason holding markup: every page must show it as text
SEEDED_XSS = '<script>alert("dead")</script>'


@pytest.fixture(scope="module")
def state_with_runs(private_pg, tmp_path_factory):
    """A fresh state DB (its own database) with the :data:`SEEDED_RUNS` in it: the full run staged 3 contacts
    (2 created, 1 dead letter whose reason holds markup), 1 flagged value, 2 accounts (1 updated, 1 conflict);
    each run's report written under a ``file://`` reports base. Yields ``{"conn_json", "reports", "runs"}``
    with the connection and the base set in the environment for the module."""
    import uuid

    from crm_migration.hooks.state import MigrationStateHook
    from crm_migration.reports.writer import Report

    dbname = f"t_{uuid.uuid4().hex[:12]}"
    conn_json = private_pg.new_database(dbname)
    reports = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_CRM_MIGRATION_STATE", conn_json)
        mp.setenv("AIRFLOW__CRM_MIGRATION__REPORTS_BASE", reports.as_uri())
        state = MigrationStateHook()
        state.migrate()
        for run_id, pair, kind, mode, status, approved in SEEDED_RUNS:
            state.start_run(run_id, pair=pair, dag_id=f"{pair}_{kind}", kind=kind, mode=mode)
            if approved:
                state.approve_run(run_id, approved)
            report = Report(title=f"Report of {run_id}", pair=pair, run_id=run_id,
                            kind="diff" if mode == "sample" else "reconciliation", headline="All is well.")
            uri = str(report.write())
            if status != "running":
                state.finish_run(run_id, status=status, stats={"report": uri})
        full, pair = SEEDED_RUNS[1][0], "apto_to_odoo"
        contacts = [{"source_id": f"003C{i}", "record": {"Id": f"003C{i}", "LastName": f"Doe {i}"}} for i in range(3)]
        state.stage(run_id=full, pair=pair, source_object="Contact", batch_no=0, rows=contacts)
        state.stage(run_id=full, pair=pair, source_object="Account", batch_no=0,
                    rows=[{"source_id": f"001A{i}", "record": {"Id": f"001A{i}"}} for i in range(2)])
        state.record_batch(run_id=full, pair=pair, source_object="Contact", odoo_model="res.partner",
                           links=[{"source_id": "003C0", "odoo_id": 41}, {"source_id": "003C1", "odoo_id": 42}],
                           audit=[{"source_id": "003C0", "odoo_id": 41, "action": "create"},
                                  {"source_id": "003C1", "odoo_id": 42, "action": "create"},
                                  {"source_id": "003C1", "odoo_id": 42, "action": "flag",
                                   "changes": {"field": "email"}, "message": "email: malformed, kept as written"}],
                           dead_letters=[{"source_id": "003C2", "field": "name",
                                          "reason": f"name: Odoo refused the value {SEEDED_XSS}",
                                          "record": contacts[2]["record"]}])
        state.record_batch(run_id=full, pair=pair, source_object="Account", odoo_model="res.partner",
                           links=[{"source_id": "001A0", "odoo_id": 51}],
                           audit=[{"source_id": "001A0", "odoo_id": 51, "action": "update"},
                                  {"source_id": "001A1", "odoo_id": 52, "action": "conflict",
                                   "message": "edited in Odoo since the last load"}])
        state.close()
        yield {"conn_json": conn_json, "reports": reports, "runs": SEEDED_RUNS, "dbname": dbname,
               "dsn": private_pg.dsn(dbname=dbname)}
    private_pg.drop_database(dbname)
