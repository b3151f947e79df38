"""DagBag integrity: the project's dags folder imports cleanly and every DAG meets the operating rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
DAGS = ROOT / "dags"
POOLS = set(json.loads((ROOT / "include" / "pools.json").read_text()))
DAG_KINDS = ("plan", "migrate", "delta", "rollback")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=DAGS, known_pools=POOLS | {"default_pool"})


def test_the_dags_folder_is_the_projects():
    from airflow.configuration import conf

    assert Path(conf.get("core", "dags_folder")).resolve() == DAGS.resolve()
    assert DAGS.is_dir()


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}


def _pairs() -> list[str]:
    return sorted(p.stem for p in (ROOT / "include" / "pairs").glob("*.yaml"))


def test_every_pair_file_yields_the_four_contract_dags(dagbag):
    for pair in _pairs():
        spec = yaml.safe_load((ROOT / "include" / "pairs" / f"{pair}.yaml").read_text())
        assert isinstance(spec, dict), pair
        for kind in DAG_KINDS:
            assert f"{pair}_{kind}" in dagbag.dags, f"{pair}_{kind} missing"
    dag_files = sorted(p.stem for p in DAGS.glob("*.py") if not p.name.startswith("_"))
    assert set(dag_files) <= set(_pairs()) | {"__init__"}, "one thin DAG file per pair"


def test_every_dag_has_tags_an_owner_and_retries(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.max_active_runs == 1 or dag_id.endswith("_plan"), dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", f"{dag_id}.{task.task_id} has no owner"
            assert task.retries >= 2, f"{dag_id}.{task.task_id} retries={task.retries}"


def test_every_pool_a_task_names_exists(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.pool in POOLS | {"default_pool"}, f"{dag_id}.{task.task_id} pool {task.pool!r}"


def test_dag_files_are_thin():
    for path in DAGS.glob("*.py"):
        code = [ln for ln in path.read_text().splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
        assert len(code) <= 15, f"{path.name} has {len(code)} lines of code: logic belongs in the package"
    assert os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] == "False"
