"""MigrationStateHook on a real private PostgreSQL (never a mock)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from crm_migration.hooks.state import SCHEMA, MigrationStateHook, migration_files

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(state):
    """tests/conftest.py's ``state``: the hook on a fresh, migrated state DB."""
    return state


def _tables(h: MigrationStateHook) -> set[str]:
    return {r[0] for r in h.get_records(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", parameters=(SCHEMA,))}


def _schema_dump(h: MigrationStateHook) -> list[tuple]:
    return h.get_records(
        "SELECT table_name, column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = %s ORDER BY table_name, ordinal_position", parameters=(SCHEMA,))


def test_migrations_create_the_contract_tables_and_are_idempotent(state_db):
    h = MigrationStateHook()
    assert h.schema_version() is None
    applied = h.migrate()
    assert applied == [f"{v}_{n}" for v, n, _ in migration_files()]
    assert {"runs", "crosswalk", "watermarks", "staging", "audit_log", "rollback_manifest",
            "dead_letter"} <= _tables(h)
    before = _schema_dump(h)
    assert h.migrate() == []            # second run: nothing to do
    assert MigrationStateHook().migrate() == []   # a new connection agrees
    assert _schema_dump(h) == before
    assert h.schema_version() == migration_files()[-1][0]
    h.close()


def test_concurrent_migrations_apply_once(state_db):
    results, errors = [], []

    def run():
        h = MigrationStateHook()
        try:
            results.append(h.migrate())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            h.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors
    assert sorted(len(r) for r in results) == [0, 0, 0, len(migration_files())]


def _links(ids, base=1000, h="h1"):
    return [{"source_id": s, "odoo_id": base + i, "content_hash": h} for i, s in enumerate(ids)]


def test_crosswalk_upsert_of_the_same_batch_twice_gives_one_row_per_key(hook):
    ids = [f"003A{i:05d}" for i in range(50)]
    for attempt in range(2):
        hook.record_batch(run_id="r1", pair="apto_to_odoo", source_object="Contact", odoo_model="res.partner",
                          links=_links(ids, h=f"h{attempt}"),
                          audit=[{"source_id": s, "odoo_id": 1, "action": "create"} for s in ids])
    assert hook.count("crosswalk", pair="apto_to_odoo", source_object="Contact") == 50
    got = hook.lookup("apto_to_odoo", "Contact", ids[:3] + ["missing"])
    assert got == {ids[0]: (1000, "h1", {}, "res.partner"), ids[1]: (1001, "h1", {}, "res.partner"),
                   ids[2]: (1002, "h1", {}, "res.partner")}


def test_written_values_merge_field_by_field(hook):
    kw = dict(run_id="r1", pair="p", source_object="Contact", odoo_model="res.partner")
    hook.record_batch(**kw, links=[{"source_id": "c1", "odoo_id": 9, "content_hash": "a",
                                    "written": {"name": "Ada", "email": "ada@x.org"}}])
    hook.record_batch(**kw, links=[{"source_id": "c1", "odoo_id": 9, "content_hash": "b",
                                    "written": {"email": "ada@y.org"}}])
    assert hook.lookup("p", "Contact", ["c1"])["c1"].written == {"name": "Ada", "email": "ada@y.org"}


def test_duplicate_keys_inside_one_batch_keep_the_last(hook):
    links = [{"source_id": "a", "odoo_id": 1}, {"source_id": "a", "odoo_id": 2}]
    hook.record_batch(run_id="r1", pair="p", source_object="o", odoo_model="res.partner", links=links)
    assert hook.odoo_ids("p", "o", ["a"]) == {"a": 2}


def test_a_failure_in_the_middle_of_record_batch_leaves_nothing(hook):
    ids = [f"s{i}" for i in range(10)]
    bad_audit = [{"source_id": s, "odoo_id": 1, "action": "create"} for s in ids]
    bad_audit[5]["action"] = "not-an-action"      # violates the CHECK constraint mid-statement
    with pytest.raises(Exception, match="audit_log_action_check"):
        hook.record_batch(run_id="r1", pair="p", source_object="o", odoo_model="res.partner",
                          links=_links(ids), audit=bad_audit,
                          manifest=[{"source_id": s, "odoo_id": 1000 + i, "action": "created"}
                                    for i, s in enumerate(ids)])
    for table in ("crosswalk", "audit_log", "rollback_manifest", "dead_letter"):
        assert hook.count(table) == 0, table
    # the hook is still usable after the failed transaction
    hook.record_batch(run_id="r1", pair="p", source_object="o", odoo_model="res.partner", links=_links(ids))
    assert hook.count("crosswalk") == 10


def test_two_threads_recording_overlapping_batches_leave_one_row_per_key(state_db):
    MigrationStateHook().migrate()
    all_ids = [f"id{i:05d}" for i in range(3000)]
    errors = []

    def writer(offset: int, rounds: int = 6) -> None:
        h = MigrationStateHook()
        try:
            for r in range(rounds):
                # overlapping windows in opposite orders: the classic deadlock shape
                chunk = all_ids[offset + r * 200: offset + r * 200 + 1500]
                if offset:
                    chunk = list(reversed(chunk))
                h.record_batch(run_id=f"run-{offset}", pair="p", source_object="Contact",
                               odoo_model="res.partner", links=_links(chunk, base=offset * 10),
                               audit=[{"source_id": s, "odoo_id": 1, "action": "update"} for s in chunk],
                               manifest=[{"source_id": s, "odoo_id": offset * 10 + i, "action": "updated",
                                          "prior_values": {"name": "x"}} for i, s in enumerate(chunk)])
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            h.close()

    threads = [threading.Thread(target=writer, args=(o,)) for o in (0, 100)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors, errors
    h = MigrationStateHook()
    rows = h.get_records(f"SELECT source_id, count(*) FROM {SCHEMA}.crosswalk GROUP BY source_id HAVING count(*) > 1")
    assert rows == []
    expected = len(set(all_ids[0:0 + 5 * 200 + 1500]) | set(all_ids[100:100 + 5 * 200 + 1500]))
    assert h.count("crosswalk") == expected
    h.close()


def test_manifest_keeps_the_first_prior_values_of_a_run(hook):
    kw = dict(run_id="r1", pair="p", source_object="Deal", odoo_model="crm.lead")
    hook.record_batch(**kw, manifest=[{"source_id": "d1", "odoo_id": 7, "action": "updated",
                                       "prior_values": {"name": "Original"}, "new_values": {"name": "First"}}])
    hook.record_batch(**kw, manifest=[{"source_id": "d1", "odoo_id": 7, "action": "updated",
                                       "prior_values": {"name": "First", "stage_id": 1},
                                       "new_values": {"name": "Second", "stage_id": 2}}])
    (row,) = hook.iter_manifest("r1")
    assert row["prior_values"] == {"name": "Original", "stage_id": 1}
    assert row["new_values"] == {"name": "Second", "stage_id": 2}


def test_dead_letters_are_upserted_and_resolved_when_the_record_lands(hook):
    kw = dict(run_id="r1", pair="p", source_object="Contact", odoo_model="res.partner")
    dl = [{"source_id": "c9", "field": "email", "reason": "Invalid email", "record": {"Email": "x@"}}]
    hook.record_batch(**kw, dead_letters=dl)
    hook.record_batch(**kw, dead_letters=dl)
    (row,) = hook.dead_letters(run_id="r1")
    assert (row["source_id"], row["field"], row["attempts"]) == ("c9", "email", 2)
    assert row["record"] == {"Email": "x@"}
    hook.record_batch(**{**kw, "run_id": "r2"}, links=[{"source_id": "c9", "odoo_id": 5}])
    assert hook.dead_letters(run_id="r1") == []


def test_staging_batches_round_trip_and_are_idempotent(hook):
    kw = dict(run_id="r1", pair="p", source_object="Account")
    rows = [{"source_id": f"001{i}", "record": {"Id": f"001{i}", "Name": f"Acme {i} é"}} for i in range(5)]
    assert hook.stage(**kw, batch_no=0, rows=rows) == 5
    assert hook.stage(**kw, batch_no=0, rows=rows) == 5
    hook.stage(**kw, batch_no=1, rows=[{"source_id": "x", "record": {"Id": "x"}, "deleted": True}])
    assert hook.staged_batches(**kw) == [{"batch_no": 0, "count": 5}, {"batch_no": 1, "count": 1}]
    got = hook.read_batch(**kw, batch_no=0)
    assert [r["record"]["Name"] for r in got] == [f"Acme {i} é" for i in range(5)]
    assert hook.read_batch(**kw, batch_no=1)[0]["deleted"] is True


def test_watermark_only_moves_forward(hook):
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert hook.get_watermark("p", "Contact") is None
    hook.set_watermark("p", "Contact", t0 + timedelta(minutes=30), run_id="a")
    hook.set_watermark("p", "Contact", t0 + timedelta(minutes=15), run_id="late-retry")
    assert hook.get_watermark("p", "Contact") == t0 + timedelta(minutes=30)


def test_read_windows_are_fixed_by_the_first_attempt_and_move_each_watermark_once(hook):
    from crm_migration.engine import windows

    class Source:
        name = "link_app"
        deletions_kept = timedelta(days=30)
        deletions_kept_where = "the Link app tenant keeps deletions"

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    full = windows.open_window(hook, Source(), pair="p", name="Contact", run_id="full", kind="full")
    assert (full["start"], full["warnings"]) == (None, [])
    windows.open_window(hook, Source(), pair="p", name="Deal", run_id="full", kind="full")
    # the objects Param: only what the run read moves; a sample moves nothing
    windows.open_window(hook, Source(), pair="p", name="Contact", run_id="sample", kind="sample")
    assert [r["moved"] for r in windows.land(hook, pair="p", run_id="sample", names=["Contact"])] == [False]
    assert hook.get_watermark("p", "Contact") is None
    assert [r["source_object"] for r in windows.land(hook, pair="p", run_id="full", names=["Contact"])] == ["Contact"]
    mark = hook.get_watermark("p", "Contact")
    assert mark == full["end"] and hook.get_watermark("p", "Deal") is None
    # a delta window whose interval starts after the watermark reads from the watermark; its rerun reads the same
    ds, de = mark + timedelta(hours=2), mark + timedelta(hours=2, minutes=15)
    win = windows.open_window(hook, Source(), pair="p", name="Contact", run_id="d1", kind="delta",
                              interval_start=ds, interval_end=de, with_deleted=True)
    assert (win["start"], win["end"], win["watermark"], win["warnings"]) == (mark, de, mark, [])
    hook.set_watermark("p", "Contact", mark + timedelta(minutes=1), run_id="elsewhere")
    again = windows.open_window(hook, Source(), pair="p", name="Contact", run_id="d1", kind="delta",
                                interval_start=ds, interval_end=de, with_deleted=True)
    assert (again["start"], again["end"]) == (mark, de)
    (landed,) = windows.land(hook, pair="p", run_id="d1", names=["Contact"])
    assert (landed["before"], landed["moved"], hook.get_watermark("p", "Contact")) == (
        mark + timedelta(minutes=1), True, de)
    moved_at = hook.watermarks("p")["Contact"]["updated_at"]
    (rerun,) = windows.land(hook, pair="p", run_id="d1", names=["Contact"])
    assert rerun["moved"] is False and hook.watermarks("p")["Contact"]["updated_at"] == moved_at
    # a late retry of an older window reads its own interval and never moves the watermark back
    old = windows.open_window(hook, Source(), pair="p", name="Contact", run_id="d0", kind="delta",
                              interval_start=t0, interval_end=t0 + timedelta(minutes=15), with_deleted=True)
    assert old["start"] == t0
    windows.land(hook, pair="p", run_id="d0", names=["Contact"])
    assert hook.get_watermark("p", "Contact") == de
    # deletions read from further back than the source keeps them: a warning naming the object and the 30 days
    (warning,) = old["warnings"]
    assert warning.startswith(f"Contact: deletions are read from {t0.isoformat()}") and "30 days only" in warning
    stale = windows.open_window(hook, Source(), pair="p", name="Deal", run_id="d3", kind="sync_now",
                                with_deleted=True)
    assert any("the Link app tenant keeps deletions 30 days only" in w and "Deal" in w for w in stale["warnings"])
    assert any("Deal has no watermark" in w for w in stale["warnings"])


def test_rolling_back_runs_newest_first_moves_their_watermarks_back(hook):
    """A rolled-back run's watermarks go back to where they were before it (none: removed), so the next delta
    reads that span again; a watermark a later run moved is not touched; a sample or a run that never landed
    moves nothing."""
    from crm_migration.engine import windows

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    full = windows.open_window(hook, object(), pair="rw", name="Contact", run_id="full", kind="full")
    windows.open_window(hook, object(), pair="rw", name="Deal", run_id="full", kind="full")
    windows.land(hook, pair="rw", run_id="full", names=["Contact", "Deal"])
    d1 = windows.open_window(hook, object(), pair="rw", name="Contact", run_id="d1", kind="delta",
                             interval_start=t0, interval_end=full["end"] + timedelta(minutes=15))
    windows.land(hook, pair="rw", run_id="d1", names=["Contact"])
    windows.open_window(hook, object(), pair="rw", name="Contact", run_id="never", kind="delta",
                        interval_start=t0, interval_end=full["end"] + timedelta(hours=1))
    assert hook.rewind_watermarks("never") == []
    (back,) = hook.rewind_watermarks("d1")
    assert (back["source_object"], back["from"], back["to"]) == ("Contact", d1["end"], full["end"])
    assert hook.watermarks("rw")["Contact"]["run_id"] == "full"
    assert hook.rewind_watermarks("d1") == []                          # once
    assert {r["source_object"]: r["to"] for r in hook.rewind_watermarks("full")} == {"Contact": None, "Deal": None}
    assert hook.watermarks("rw") == {}
    assert not [w for w in hook.read_windows("full", "rw") if w["landed_at"]]


def test_dead_letters_resolve_when_their_record_lands_or_is_gone_from_the_source(hook):
    dl = [{"source_id": s, "field": "email", "reason": "refused", "record": {"Id": s}} for s in ("a", "b", "c")]
    hook.record_batch(run_id="r1", pair="dl", source_object="Contact", odoo_model="res.partner", dead_letters=dl)
    assert hook.open_dead_letter_ids("dl", "Contact") == ["a", "b", "c"]
    assert hook.open_dead_letter_ids("dl", "Contact", run_id="r0") == []
    assert hook.note_replayed("dl", "Contact", ["a", "b", "c"], run_id="replay") == 3
    hook.record_batch(run_id="replay", pair="dl", source_object="Contact", odoo_model="res.partner",
                      links=[{"source_id": "a", "odoo_id": 7, "written": {"name": "A"}}])
    assert hook.resolve_dead_letters("dl", "Contact", ["c"], run_id="replay", resolution="gone from the source") == 1
    rows = {d["source_id"]: d for d in hook.dead_letters(pair="dl", unresolved_only=False)}
    assert (rows["a"]["resolution"], rows["a"]["resolved_run_id"]) == ("landed", "replay")
    assert (rows["c"]["resolution"], rows["b"]["resolved_at"]) == ("gone from the source", None)
    assert hook.dead_letter_tally("dl") == {"Contact": {"open": 1, "resolved": 2, "replayed": 3}}
    # refused again: open again
    hook.record_batch(run_id="r1", pair="dl", source_object="Contact", odoo_model="res.partner", dead_letters=dl[:1])
    assert hook.open_dead_letter_ids("dl", "Contact") == ["a", "b"]


def test_a_later_read_that_wrote_a_record_makes_an_earlier_runs_staged_version_stale(hook):
    from crm_migration.engine import windows

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for run in ("early", "late"):
        windows.open_window(hook, object(), pair="p", name="Contact", run_id=run, kind="delta",
                            interval_start=t0, interval_end=t0 + timedelta(minutes=15))
    hook.record_batch(run_id="late", pair="p", source_object="Contact", odoo_model="res.partner",
                      links=[{"source_id": "c1", "odoo_id": 1, "written": {"name": "new"}}])
    hook.record_batch(run_id="early", pair="p", source_object="Contact", odoo_model="res.partner",
                      links=[{"source_id": "c2", "odoo_id": 2, "written": {"name": "x"}}])
    assert hook.newer_reads(run_id="early", pair="p", source_object="Contact", key_object="Contact",
                            source_ids=["c1", "c2", "c3"]) == {"c1": "late"}
    assert hook.newer_reads(run_id="late", pair="p", source_object="Contact", key_object="Contact",
                            source_ids=["c1", "c2"]) == {}


def test_runs_are_registered_once_and_approved(hook):
    hook.start_run("manual__1", pair="apto_to_odoo", dag_id="apto_to_odoo_migrate", kind="migrate",
                   mode="sample", params={"sample_size": 200})
    again = hook.start_run("manual__1", pair="apto_to_odoo", dag_id="apto_to_odoo_migrate", kind="migrate")
    assert again["params"] == {"sample_size": 200}
    hook.approve_run("manual__1", "Ada Lovelace")
    hook.finish_run("manual__1", status="success", stats={"created": 3})
    run = hook.get_run("manual__1")
    assert (run["approved_by"], run["status"], run["stats"]) == ("Ada Lovelace", "success", {"created": 3})


def test_claims_mark_what_an_interrupted_attempt_may_have_created(hook):
    kw = dict(pair="p", source_object="Contact")
    hook.record_batch(run_id="r0", odoo_model="res.partner", **kw, links=[{"source_id": "known", "odoo_id": 1}])
    bound, maybe = hook.lookup_and_claim(source_ids=["known", "a", "b"], **kw, run_id="r1")
    assert set(bound) == {"known"} and maybe == set()          # first attempt: nothing suspicious
    assert hook.count("pending") == 2
    # the attempt dies before recording; the retry sees a and b as "may have landed"
    bound, maybe = hook.lookup_and_claim(source_ids=["known", "a", "b", "c"], **kw, run_id="r1")
    assert maybe == {"a", "b"} and set(bound) == {"known"}
    hook.record_batch(run_id="r1", odoo_model="res.partner", **kw,
                      links=[{"source_id": "a", "odoo_id": 2}, {"source_id": "b", "odoo_id": 3}],
                      dead_letters=[{"source_id": "c", "reason": "bad"}])
    assert hook.count("pending") == 0
