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
