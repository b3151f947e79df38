"""A run whose dead letters exceed ``settings.max_dead_letter_share`` fails its verify step, loudly.

One world on the Apto sandbox (scale 1) and the Odoo sandbox: the stage history is mapped to a message type
Odoo refuses, so every history record whose deal landed is a dead letter (a mapping failure: it must fail
verify); the org's own gaps (the history of deals deleted in the source, a file the source lost) are listed
as needing action and do not count.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from importlib.resources import files

import pytest
import yaml
from airflow.sdk import ObjectStoragePath

pytestmark = pytest.mark.integration

RUN = "dead-letter-limit-run"


@pytest.fixture(scope="module")
def world(private_pg, make_odoo_target, tmp_path_factory):
    from crm_migration.engine.pipeline import Pipeline
    from crm_migration.hooks.apto import AptoHook
    from crm_migration.hooks.odoo import OdooHook
    from crm_migration.hooks.state import MigrationStateHook
    from crm_migration.mapping.spec import parse_pair
    from crm_migration.streams.apto_source import AptoSource
    from crm_sandbox.apto.server import serve as apto_serve

    raw = yaml.safe_load((files("crm_migration") / "pairs" / "apto_to_odoo.yaml").read_text(encoding="utf-8"))
    raw["objects"]["OpportunityHistory"]["fields"]["message_type"] = {"const": "bogus"}  # not a message type
    raw.setdefault("settings", {})["max_dead_letter_share"] = 0.05
    mapping = tmp_path_factory.mktemp("pairs") / "apto_dead_letters.yaml"   # a user's own mapping file
    mapping.write_text(yaml.safe_dump(raw), encoding="utf-8")
    spec = parse_pair(raw, origin="test:dead_letter_limit")
    dbname = f"t_{uuid.uuid4().hex[:12]}"
    conn_json = private_pg.new_database(dbname)
    apto = apto_serve(port=0, scale=1, seed=7)
    target, close = make_odoo_target("sandbox", "t_dead_letter_limit")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIRFLOW_CONN_CRM_MIGRATION_STATE", conn_json)
        mp.setenv("AIRFLOW_CONN_APTO_DEFAULT", json.dumps(apto.state.airflow_conn(apto.url, "client_credentials")))
        mp.setenv("AIRFLOW_CONN_ODOO_DEFAULT", target.conn_json(transport="jsonrpc"))
        state = MigrationStateHook()
        state.migrate()
        odoo = OdooHook()
        pipe = Pipeline(spec, AptoSource(AptoHook()), odoo, state)
        pipe.prepare_schema(run_id=RUN)
        end = datetime.now(UTC) + timedelta(minutes=1)
        names = pipe.loadable()
        for name in names:
            for b in pipe.extract(name, run_id=RUN, start=None, end=end, batch_size=200):
                pipe.load(name, run_id=RUN, batch_no=b["batch_no"])
            pipe.link(name, run_id=RUN)
        yield {"pipe": pipe, "apto": apto, "names": names, "mapping": mapping}
        state.close()
        odoo.close()
    apto.stop()
    close()
    private_pg.drop_database(dbname)


@pytest.fixture(scope="module")
def rows(world):
    from crm_migration.engine.verify import reconcile

    return {r["object"]: r for r in reconcile(world["pipe"], run_id=RUN, objects=world["names"])}


def test_a_mapping_failure_is_over_the_limit_and_named_with_its_reasons(world, rows):
    from crm_migration.engine.verify import dead_letter_verdict

    history = rows["OpportunityHistory"]
    records = history["crosswalk"] + history["dead_letters"]
    gaps = history["dead_letters"] - history["dead_letters_counted"]
    assert history["crosswalk"] == 0 and records >= 100 and 0 < gaps < 0.1 * records
    assert history["dead_letter_share"] == round(history["dead_letters_counted"] / records, 6)
    assert history["dead_letter_limit"] == 0.05  # the pair file's setting
    assert history["status"] == "mismatch" and any("dead letters" in p for p in history["problems"])
    [[reason, count, counted], *others] = history["dead_letter_reasons"]
    assert (count, counted) == (history["dead_letters_counted"], True)
    assert reason == "message_type: ValueError: Wrong value for mail.message.message_type: '…'"
    # the history of deals deleted in the source: grouped, named, not counted
    assert others and all(not c and "Opportunity <id> not migrated (yet)" in r for r, _, c in others)
    assert sum(n for _, n, _ in others) == gaps
    over, _ = dead_letter_verdict(list(rows.values()))
    assert [ln.split(":")[0] for ln in over] == ["OpportunityHistory"]  # nothing hangs on it: no cascade
    assert over[0].startswith(f"OpportunityHistory: {history['dead_letters_counted']} of {records} records are dead "
                              f"letters ({history['dead_letter_share']:.1%}, limit 5.0% settings.max_dead_letter_"
                              f"share): {count} × message_type: ValueError: Wrong value for ")
    assert f"; {gaps} × res_id: Opportunity <id> not migrated (yet) (a gap in the source)" in over[0]


def test_gaps_in_the_source_do_not_count_but_are_listed_as_needing_action(world, rows):
    from crm_migration.engine.verify import dead_letter_verdict

    files_ = rows["Attachment"]
    assert files_["dead_letters"] >= 1 and files_["dead_letters_counted"] == 0  # a file the source lost
    assert [r[2] for r in files_["dead_letter_reasons"]] == [False] * len(files_["dead_letter_reasons"])
    _, action = dead_letter_verdict(list(rows.values()))
    line = next(ln for ln in action if ln.startswith("Attachment: "))
    assert "needs action" in line and "file missing in the source (HTTP 404)" in line
    assert "(a gap in the source)" in line
    assert rows["Contact"]["dead_letters"] == 0 and not any(ln.startswith("Contact: ") for ln in action)


def test_the_verify_task_fails_naming_the_objects(world, monkeypatch, capsys, tmp_path):
    from airflow.sdk.exceptions import AirflowFailException

    from crm_migration.operators.migration import VerifyOperator

    pipe = world["pipe"]
    pipe.state.start_run(RUN, pair="apto_to_odoo", dag_id="apto_to_odoo_migrate", kind="migrate", mode="full")
    monkeypatch.setenv("AIRFLOW__CRM_MIGRATION__REPORTS_BASE", str(tmp_path))
    verify = VerifyOperator(task_id="verify", pair=world["mapping"], check="reconciliation",
                            objects=list(world["names"]))
    with pytest.raises(AirflowFailException) as err:
        verify.execute({"run_id": RUN})
    text = str(err.value)
    assert text.startswith("1 object over the dead-letter limit (settings.max_dead_letter_share): "
                           "OpportunityHistory: ")
    assert "× message_type: ValueError: Wrong value for mail.message.message_type" in text
    assert "Attachment" not in text
    assert "Attachment: 1 dead letter needs action" in capsys.readouterr().out  # under the limit: a warning (the task log)
    run = pipe.state.get_run(RUN)
    assert run["status"] == "failed" and len(run["stats"]["dead_letters_over_limit"]) == 1
    html = ObjectStoragePath(run["stats"]["report"]).read_text(encoding="utf-8")
    assert "Dead letters by reason" in html and "message_type: ValueError: Wrong value for mail.message" in html
    assert "a gap in the source" in html
