"""The migration operators as a user's DAG sees them: templated arguments, the connections they name, the
factory's Params (a typo'd object is refused when the run is triggered), the pair file's connections and a
user's own mapping file. No database, no network: hooks are built, never connected."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib.resources import files

import pytest
import yaml

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _raw() -> dict:
    return yaml.safe_load((files("crm_migration") / "pairs" / "apto_to_odoo.yaml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def apto_dags():
    """The bundled Apto pair's four DAGs, as the factory builds them (built once: a test may render its tasks)."""
    from crm_migration.dag_factory import build_pair_dags

    return build_pair_dags("apto_to_odoo")


def _render(op, dag, **params):
    op.render_template_fields({"params": {**dag.params.validate(), **params}, "run_id": "manual__1"},
                              jinja_env=dag.get_template_env())
    return op


def test_templated_arguments_render_from_the_params_and_read_back_typed():
    from airflow.sdk import DAG, Param

    from crm_migration.errors import ConfigurationError
    from crm_migration.operators.migration import ExtractObjectOperator, as_bool, as_int, as_names

    with DAG("user_dag", schedule=None, start_date=T0,
             params={"size": Param(50, type="integer"), "objs": Param(["Contact"], type="array"),
                     "odoo": Param("my_odoo", type="string"), "go": Param(None, type=["null", "boolean"])}) as dag:
        op = ExtractObjectOperator(task_id="extract_contact", pair="apto_to_odoo", source_object="Contact",
                                   mode="{{ 'sample' if params.size < 100 else 'full' }}",
                                   sample_size="{{ params.size }}", objects="{{ params.objs }}",
                                   sync_now="{{ params.go }}", odoo_conn_id="{{ params.odoo }}")
    _render(op, dag)
    assert (op.mode, op.odoo_conn_id) == ("sample", "my_odoo")
    assert as_int(op.sample_size, name="sample_size", default=200) == 50
    assert as_names(op.objects) == ["Contact"]
    assert as_bool(op.sync_now, name="sync_now") is None
    assert as_bool("False", name="dry_run") is False and as_bool("true", name="dry_run") is True
    assert as_names("all") is None and as_names("Contact, Account") == ["Contact", "Account"]
    with pytest.raises(ConfigurationError, match="dry_run must be true or false, not 'maybe'"):
        as_bool("maybe", name="dry_run")


def test_a_bad_literal_argument_is_refused_when_the_dag_is_parsed():
    from crm_migration.operators.migration import ExtractObjectOperator, VerifyOperator

    with pytest.raises(ValueError, match="mode must be one of sample, full, delta, not 'ful'"):
        ExtractObjectOperator(task_id="x", pair="apto_to_odoo", source_object="Contact", mode="ful")
    with pytest.raises(ValueError, match="check must be one of diff, reconciliation"):
        VerifyOperator(task_id="v", pair="apto_to_odoo", check="report")


def test_the_named_connections_reach_the_hooks(monkeypatch):
    from crm_migration.operators.migration import LoadBatchOperator, RollbackOperator

    op = LoadBatchOperator(task_id="load_contact", pair="apto_to_odoo", source_object="Contact",
                           batch={"batch_no": 1}, source_conn_id="my_apto", odoo_conn_id="my_odoo",
                           state_conn_id="my_state")
    pipe = op.pipeline()
    assert pipe.source.hook.apto_conn_id == "my_apto"
    assert pipe.odoo.odoo_conn_id == "my_odoo"
    assert pipe.state.postgres_conn_id == "my_state"
    # defaults: DESIGN.md's, the source's by the pair's source
    pipe = LoadBatchOperator(task_id="l", pair="link_app_to_odoo", source_object="contacts", batch={}).pipeline()
    assert (pipe.source.hook.link_app_conn_id, pipe.odoo.odoo_conn_id, pipe.state.postgres_conn_id) == (
        "link_app_default", "odoo_default", "crm_migration_state")
    rb = RollbackOperator(task_id="rollback", pair="apto_to_odoo", target_run_id="{{ params.run_id }}",
                          state_conn_id="my_state")
    assert rb.state_hook().postgres_conn_id == "my_state"


def test_an_object_outside_the_mapping_is_an_error_naming_it():
    from crm_migration.errors import ConfigurationError
    from crm_migration.operators.migration import LinkOperator

    op = LinkOperator(task_id="link_account", pair="apto_to_odoo", source_object="Account", objects=["Contcat"])
    with pytest.raises(ConfigurationError, match=r"objects \['Contcat'\] are not objects of the mapping"):
        op.execute({"run_id": "manual__1"})


def test_the_objects_param_is_an_enum_of_the_pairs_objects_and_refuses_a_typo(apto_dags):
    """What triggering a run does with its conf (``SerializedDAG.create_dagrun``: ``params.deep_merge(conf)
    .validate()``, a 400 from the API, an error from the CLI) on the DAG as the scheduler holds it."""
    from airflow.exceptions import ParamValidationError
    from airflow.serialization.serialized_objects import DagSerialization

    for dag_id in ("apto_to_odoo_migrate", "apto_to_odoo_delta"):
        params = DagSerialization.from_dict(DagSerialization.to_dict(apto_dags[dag_id])).params
        schema = params.get_param("objects").schema
        assert "Contact" in schema["items"]["enum"] and "Opportunity" in schema["items"]["enum"]
        assert params.validate()["objects"] == schema["items"]["enum"]          # default: all of them
        assert params.deep_merge({"objects": ["Contact", "Account"]}).validate()["objects"] == ["Contact", "Account"]
        for bad in (["Contcat"], "Contact", [], ["Contact", "Contact"]):
            with pytest.raises(ParamValidationError):
                params.deep_merge({"objects": bad}).validate()


def test_the_factory_builds_the_dags_from_the_operators_with_templated_params(apto_dags):
    from crm_migration.operators.migration import MigrationOperator

    dags = apto_dags
    migrate = dags["apto_to_odoo_migrate"]
    ops = [t for t in migrate.tasks if isinstance(t, MigrationOperator) or t.task_id.startswith("load_")]
    assert {t.task_id for t in migrate.tasks} - {t.task_id for t in ops} == {"approve", "approve_diff"}
    extract = migrate.get_task("extract_contact")
    _render(extract, migrate, mode="full", batch_size=42, objects=["Contact"])
    assert (extract.mode, extract.batch_size, extract.objects) == ("full", "42", "['Contact']")
    verify = migrate.get_task("verify")
    _render(verify, migrate, mode="sample")
    assert verify.check == "diff"
    assert type(migrate.get_task("load_contact")).__name__ in ("MappedOperator", "LoadBatchOperator")
    for dag in dags.values():
        for task in dag.tasks:
            if task.task_id not in ("in_cutover_window", "approve", "approve_diff", "confirm_mapping"):
                kw = task.partial_kwargs if hasattr(task, "partial_kwargs") else vars(task)
                assert (kw["pair"], kw["source_conn_id"], kw["odoo_conn_id"], kw["state_conn_id"]) == (
                    "apto_to_odoo", None, "odoo_default", "crm_migration_state"), task.task_id


def test_the_pair_file_names_the_connections_and_the_factory_arguments_win(tmp_path):
    from crm_migration.dag_factory import build_pair_dags

    raw = {**_raw(), "pair": "apto_eu_to_odoo",
           "connections": {"source": "apto_eu", "odoo": "odoo_eu", "state": "crm_state_eu"}}
    path = tmp_path / "apto_eu_to_odoo.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    dags = build_pair_dags(path)
    assert sorted(dags) == [f"apto_eu_to_odoo_{k}" for k in ("delta", "migrate", "plan", "rollback")]
    extract = dags["apto_eu_to_odoo_delta"].get_task("extract_contact")
    assert (extract.pair, extract.source_conn_id, extract.odoo_conn_id, extract.state_conn_id) == (
        str(path), "apto_eu", "odoo_eu", "crm_state_eu")
    assert dags["apto_eu_to_odoo_rollback"].get_task("approve").state_conn_id == "crm_state_eu"
    dags = build_pair_dags(path, odoo_conn_id="odoo_other")
    extract = dags["apto_eu_to_odoo_migrate"].get_task("extract_contact")
    assert (extract.source_conn_id, extract.odoo_conn_id) == ("apto_eu", "odoo_other")


@pytest.mark.parametrize(("connections", "error"), [
    ({"target": "x"}, "connections: unknown key(s) ['target']"),
    ({"odoo": "my odoo"}, "connections.odoo must be an Airflow connection id"),
    ("odoo_eu", "connections must be a mapping"),
])
def test_a_bad_connections_section_is_refused_naming_it(connections, error):
    from crm_migration.mapping.spec import SpecError, parse_pair

    with pytest.raises(SpecError) as err:
        parse_pair({**_raw(), "connections": connections}, origin="my.yaml")
    assert error in str(err.value) and str(err.value).startswith("my.yaml")


def test_a_pair_name_is_read_from_the_pairs_folder_before_the_bundled_one(tmp_path, monkeypatch):
    from crm_migration.dag_factory import build_pair_dags

    raw = _raw()
    raw["objects"]["Contact"]["fields"]["function"] = {"from": "Title", "fn": "truncate", "args": {"length": 40}}  # a user's edit
    (tmp_path / "apto_to_odoo.yaml").write_text(yaml.safe_dump(raw), encoding="utf-8")
    monkeypatch.setenv("AIRFLOW__CRM_MIGRATION__PAIRS_FOLDER", str(tmp_path))
    dags = build_pair_dags("apto_to_odoo")
    task = dags["apto_to_odoo_migrate"].get_task("extract_contact")
    assert task.pair == str(tmp_path / "apto_to_odoo.yaml")
    assert task.pair_spec().object("Contact").fields["function"].fn[0].name == "truncate"
    assert f"Built from `{tmp_path / 'apto_to_odoo.yaml'}`" in dags["apto_to_odoo_plan"].doc_md
    # a pair the folder lacks: the bundled one
    assert build_pair_dags("link_app_to_odoo")["link_app_to_odoo_plan"].get_task("plan").pair == "link_app_to_odoo"


@pytest.mark.parametrize("dag_id", ["apto_to_odoo_migrate", "apto_to_odoo_delta"])
def test_records_are_extracted_first_and_picklist_options_added_once_before_any_load(apto_dags, dag_id):
    from crm_migration.mapping.spec import load_pair

    spec = load_pair("apto_to_odoo")
    dag = apto_dags[dag_id]
    first = spec.extracted_first()
    assert first == ["RecordType", "OpportunityStage", "Account", "Contact", "AccountContactRelation",
                     "Opportunity", "Event"]
    picklists = dag.get_task("picklists")
    assert picklists.upstream_task_ids == {f"extract_{n.lower()}" for n in first}
    assert picklists.source_objects == first
    # no extract of them waits for a load; a contact's waits for the accounts' extract (a sample follows refs)
    for name in first:
        assert not [t for t in dag.get_task(f"extract_{name.lower()}").get_flat_relative_ids(upstream=True)
                    if t.startswith(("load_", "link_"))], name
    assert "extract_account" in dag.get_task("extract_contact").upstream_task_ids
    # every load comes after the one registry change; files and notes are read once their parents landed
    for task in dag.tasks:
        if task.task_id.startswith("load_"):
            assert "picklists" in task.get_flat_relative_ids(upstream=True), task.task_id
    for late in ("extract_contentversion", "extract_contentnote", "extract_task"):
        assert {"load_opportunity", "load_contact"} <= dag.get_task(late).get_flat_relative_ids(upstream=True)
