"""The Link app pair's first load into a REAL Odoo, per object, against Odoo's own ceiling: a raw batched
``create`` of the same records (same values, same server, same run), then a rerun with nothing changed and
a delta over an empty window.

Per object (the chatter timeline as ``activities``): records, seconds of its load tasks (map, Odoo calls,
state DB; its extract apart), records/s, Odoo calls per 1,000 records, the raw create of the same records and
the ratio of the two; the rerun's seconds (extract and load) as a share of the first load's, and the empty
delta's seconds and Odoo calls. The raw create sends, in one ``create`` per batch of the load, each record's
full values: what the loader created plus what it wrote after (a deal's stage date, a company's parent, a
meeting's deal), with the same context (keys prefixed ``raw:``), right after the object's load, into a copy of
the database made right before the load (or right after it when the load created something its records need),
its registry warmed by one untimed create of an unrelated model (see :class:`RawCeiling`). The ``exact`` column
compares with that raw create plus what any loader must write after it to land the same values: those values
the raw create sent that Odoo did not keep (Odoo 17 sets a deal's stage date to now on create), written one
call per create (:meth:`RawCeiling.not_kept`); it equals ``ratio`` where create keeps everything. The first
load's seconds include everything the pipeline did (prepare_schema, extracts, loads, links, chatter; not the bench's copies and raw creates); the
headline splits them. Prints figures; asserts nothing about time (the machine is shared: compare ratios of one
run).

The server is ``../shared/odoo17-server`` (``--target odoo19``: ``../shared/odoo19-server``, JSON-2), started if
needed (and then stopped), a fresh database per scale, dropped at the end (``--keep`` keeps it; the raw copies
are dropped as soon as measured).
Run: make bench  (or .venv/bin/python bench/bench_odoo_real.py [scale ...] [--target odoo19] [--keep] [--verbose]
[--profile DIR])
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import statistics
import sys
import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _env import Quiet, RunFigures, machine, migrate_all, start_sandbox  # noqa: E402

from crm_sandbox.pg import private_postgres  # noqa: E402
from crm_sandbox.targets import RealOdoo, RealOdooUnavailable  # noqa: E402

TOKEN = "link-sandbox-token"
#: the Link app pair's objects shown, in load order (pipelines and stages are a handful of records)
SHOWN = ("companies", "contacts", "deals", "activities", "open_activities", "meetings", "attachments")


def recording_hook() -> Any:
    """An OdooHook that keeps what it created and wrote (the values of the raw create)."""
    from crm_migration.hooks.odoo import OdooHook, OdooRecordError

    class Recording(OdooHook):
        def __init__(self) -> None:
            super().__init__()
            self.created: list[tuple[str, list[dict[str, Any]], list[str], dict[str, Any], list[int]]] = []
            self.written: dict[tuple[str, int], dict[str, Any]] = {}
            self.seconds: dict[tuple[str, str], float] = {}     # time in Odoo calls, per (model, method)
            self.refused: dict[tuple[str, str], list[float]] = {}  # the calls Odoo refused (the loader splits them)
            self.option_calls = 0                               # picklist options added (a registry change each)

        def call(self, model: str, method: str, *args: Any, **kw: Any) -> Any:
            started = time.perf_counter()
            try:
                return super().call(model, method, *args, **kw)
            except OdooRecordError:
                self.refused.setdefault((model, method), []).append(time.perf_counter() - started)
                raise
            finally:
                self.seconds[(model, method)] = self.seconds.get((model, method), 0.0) + time.perf_counter() - started

        def create_batch(self, model: str, vals_list: Sequence[Mapping[str, Any]], *,
                         keys: Sequence[str] | None = None, context: Mapping[str, Any] | None = None) -> list[int]:
            ids = super().create_batch(model, vals_list, keys=keys, context=context)
            self.created.append((model, [dict(v) for v in vals_list], list(keys or []), dict(context or {}), ids))
            return ids

        def add_options(self, options: Mapping[str, Mapping[str, Sequence[str]]]) -> int:
            self.option_calls += 1
            return super().add_options(options)

        def write_batch(self, model: str, updates: Mapping[int, Mapping[str, Any]], **kw: Any) -> int:
            n = super().write_batch(model, updates, **kw)
            for oid, vals in updates.items():
                self.written.setdefault((model, int(oid)), {}).update(vals)
            return n

    return Recording()


class RawCeiling:
    """The raw ceiling of each load phase, measured right after it (the machine is shared: minutes apart, the
    two would meet different loads): the same records created again with one raw ``create`` per batch of the
    load, on a copy of the database holding everything the records refer to and what the load met. That copy is
    made right before the load when the load created nothing the records need (no option added to a picklist, no
    record of another model such as a lost reason, no parent among the object's own records): the raw create then
    meets Odoo as the load met it (an open task's create subscribes its user to the record: on a copy made after
    the load, the followers would already be there). Otherwise it is made right after the load. The copy's
    registry is new, so it is first warmed by one untimed create of an unrelated model (a tag): the raw create
    then meets a warm registry and a model it has not created yet, without a registry change of its own. A
    registry change the pipeline makes (an option added to a picklist field) stays in the load's time."""

    WARM_UP = "res.partner.category"

    def __init__(self, pipe: Any, real: Any, db: str, key: str | None, *, verbose: bool = False) -> None:
        self.pipe, self.real, self.db, self.key, self.verbose = pipe, real, db, key, verbose
        self.seen, self.spent_s = 0, 0.0                # spent_s: the bench's own time inside the first load
        self.spent: dict[tuple[str, str], float] = {}
        self.refused_seen: dict[tuple[str, str], int] = {}
        self.pre: str | None = None                     # the copy made before the phase's load
        self.options = 0                                # picklist option calls seen before the phase

    @staticmethod
    def not_kept(raw: Any, model: str, made: Sequence[tuple[dict[str, Any], list[tuple[int, dict[str, Any]]]]],
                 wrote: set[str]) -> tuple[float, list[str]]:
        """The exact ceiling's second step: of the values the loader wrote after its create (``wrote``: sent in
        the raw create too), those Odoo did not keep (read back after it, untimed; Odoo 17 sets a deal's stage
        date to now whatever the create says), written again the way any loader must, one call per create
        (:meth:`OdooHook.write_batch`: ``load()`` with a ``.id`` column for distinct values). Returns ``(seconds of
        those writes, the fields)``."""
        from crm_migration.engine.values import changed_fields

        fields = raw.fields_get(model)
        stored = {f for f in wrote if fields.get(f, {}).get("type") not in (None, "binary", "one2many", "many2many")}
        if not stored:
            return 0.0, []
        pending: list[tuple[dict[str, Any], dict[int, dict[str, Any]]]] = []
        names: set[str] = set()
        for ctx, pairs in made:
            asked = sorted({f for _, vals in pairs for f in vals if f in stored})
            now = {r["id"]: r for r in raw.read(model, [i for i, _ in pairs], asked, context={"active_test": False})}
            lost = {i: changed_fields({f: v for f, v in vals.items() if f in stored}, now.get(i, {}), fields)
                    for i, vals in pairs}
            lost = {i: d for i, d in lost.items() if d}
            names.update(f for d in lost.values() for f in d)
            pending.append((ctx, lost))
        t = time.perf_counter()
        for ctx, lost in pending:
            if lost:
                raw.write_batch(model, lost, context=ctx)
        return (time.perf_counter() - t if names else 0.0), sorted(names)

    def before(self, phase: str) -> None:
        started = time.perf_counter()
        self.pre = self.real.copy_db(self.db, f"{self.db}_pre")
        self.options = self.pipe.odoo.option_calls
        self.spent_s += time.perf_counter() - started

    def __call__(self, phase: str, figures: dict[str, Any]) -> None:
        started = time.perf_counter()
        rec = self.pipe.odoo
        model = self.pipe.spec.object(phase.split("+")[0]).model
        phase_calls = rec.created[self.seen:]
        calls = [c for c in phase_calls if c[0] == model]
        self.seen = len(rec.created)
        own_parents = any(self.pipe.self_ref_fields(self.pipe.spec.object(o)) for o in phase.split("+"))
        needs_load = (own_parents or rec.option_calls > self.options
                      or any(c[0] != model for c in phase_calls))
        if self.verbose:                    # where the load's time went: Odoo calls by method
            now = dict(rec.seconds)
            spent = {k: v - self.spent.get(k, 0.0) for k, v in now.items() if v - self.spent.get(k, 0.0) > 0.005}
            self.spent = now
            refused = {k: v[self.refused_seen.get(k, 0):] for k, v in rec.refused.items()}
            self.refused_seen = {k: len(v) for k, v in rec.refused.items()}
            print(f"  {phase}: load {figures['load_s']:.2f} s; Odoo calls {sum(spent.values()):.2f} s: "
                  + ", ".join(f"{m}.{meth} {v:.2f} s" for (m, meth), v in sorted(spent.items(), key=lambda kv: -kv[1]))
                  + "".join(f"; refused by Odoo (then split): {m}.{meth} {len(v)} calls {sum(v):.2f} s"
                            for (m, meth), v in refused.items() if v), flush=True)
        if needs_load or self.pre is None:
            copy, where = self.real.copy_db(self.db, f"{self.db}_raw"), "after"
            if self.pre:
                self.real.drop_dbs([self.pre])
        else:
            copy, where = self.pre, "before"
        self.pre = None
        try:
            from crm_migration.hooks.odoo import OdooHook

            os.environ["AIRFLOW_CONN_ODOO_RAW"] = json.dumps({
                "conn_type": "odoo", "host": self.real.url, "schema": copy, "login": "admin",
                "password": self.key or "admin"})
            raw = OdooHook("odoo_raw")
            tag = raw.create_batch(self.WARM_UP, [{"name": "bench warm-up"}])
            raw.unlink(self.WARM_UP, tag)
            t, n, made = time.perf_counter(), 0, []
            for _model, vals_list, keys, ctx, ids in calls:
                full = [{**v, **rec.written.get((model, oid), {})} for v, oid in zip(vals_list, ids, strict=True)]
                new_ids = raw.create_batch(model, full, keys=[f"raw:{k}" for k in keys] if keys else None,
                                           context=ctx)
                made.append((ctx, list(zip(new_ids, full, strict=True))))
                n += len(full)
            figures["raw_s"], figures["raw_records"] = time.perf_counter() - t, n
            wrote = {f for _m, _v, _k, _c, ids in calls for oid in ids for f in rec.written.get((model, oid), {})}
            figures["raw_after_s"], after_fields = self.not_kept(raw, model, made, wrote)
        finally:
            self.real.drop_dbs([copy])
        for c in calls:                     # the values are no longer needed (files are large)
            c[1].clear()
        if self.verbose:
            print(f"  raw {phase}: {figures['raw_s']:.2f} s for {figures['raw_records']} records (on a copy made "
                  f"{where} the load)" + (f"; then {figures['raw_after_s']:.2f} s writing what that create did not "
                                          f"keep ({', '.join(after_fields)})" if after_fields else ""), flush=True)
        self.spent_s += time.perf_counter() - started


class Profiles:
    """``--profile DIR``: a cProfile of each object's load tasks (its raw create and copies apart), written to
    ``DIR/<scale>-<object>.prof`` (read with ``python -m pstats``); the time waiting on Odoo shows as socket reads."""

    def __init__(self, folder: Path, scale: int) -> None:
        self.folder, self.scale = folder, scale
        self.folder.mkdir(parents=True, exist_ok=True)
        self.profile: cProfile.Profile | None = None

    def before(self, phase: str) -> None:
        self.profile = cProfile.Profile()
        self.profile.enable()

    def after(self, phase: str) -> None:
        if self.profile is not None:
            self.profile.disable()
            self.profile.dump_stats(self.folder / f"{self.scale}-{phase}.prof")
            self.profile = None


def run(scale: int, target: str, *, batch_size: int = 500, keep: bool = False, verbose: bool = False,
        profile: Path | None = None) -> dict[str, tuple[float, float, float]]:
    """One first load, rerun and empty delta at ``scale``; prints the table and returns its ratios per line
    (``{line: (ratio, exact, rerun %)}``), empty when the server is not there."""
    real = RealOdoo(target)
    try:
        real.start()
    except RealOdooUnavailable as exc:
        print(f"scale {scale}: skipped, no real {target} server: {exc}")
        return {}
    link, link_url = start_sandbox("link-app", "--scale", str(scale), "--seed", "7")
    db = real.new_db(f"bench_{scale}")
    key = real.api_key(db) if real.version >= 19 else None
    try:
        with private_postgres() as pg:
            os.environ["AIRFLOW_CONN_CRM_MIGRATION_STATE"] = pg.airflow_conn
            os.environ["AIRFLOW_CONN_LINK_APP_DEFAULT"] = json.dumps({
                "conn_type": "link_app", "host": link_url, "password": TOKEN, "extra": {"page_size": 100}})
            os.environ["AIRFLOW_CONN_ODOO_DEFAULT"] = json.dumps({
                "conn_type": "odoo", "host": real.url, "schema": db, "login": "admin", "password": key or "admin"})
            from crm_migration.engine.pipeline import Pipeline
            from crm_migration.hooks.link_app import LinkAppHook
            from crm_migration.hooks.odoo import OdooHook
            from crm_migration.hooks.state import MigrationStateHook
            from crm_migration.streams.link_app_source import LinkAppSource

            state = MigrationStateHook()
            state.migrate()

            def pipe(odoo: Any = None) -> Any:          # one per run, as each task builds its own
                return Pipeline("link_app_to_odoo", LinkAppSource(LinkAppHook()), odoo or OdooHook(), state,
                                log=Quiet())

            first_pipe = pipe(recording_hook())
            ceiling = RawCeiling(first_pipe, real, db, key, verbose=verbose)
            profiles = Profiles(profile, scale) if profile else None

            def before(phase: str) -> None:
                ceiling.before(phase)
                if profiles:
                    profiles.before(phase)

            def after(phase: str, figures: dict[str, Any]) -> None:
                if profiles:
                    profiles.after(phase)
                ceiling(phase, figures)

            first = migrate_all(first_pipe, "bench-full", batch_size=batch_size, schema=True, after=after,
                                before=before)
            first.wall -= ceiling.spent_s               # the pipeline's seconds only
            window = datetime.now(UTC)
            rerun = migrate_all(pipe(), "bench-rerun", batch_size=batch_size)
            delta = migrate_all(pipe(), "bench-delta", batch_size=batch_size, start=window)
            ratios = report(scale, target, first, rerun, delta)
            state.close()
    finally:
        link.terminate()
        link.wait(timeout=10)
        if not keep:
            real.drop_db(db)
        real.stop()                                     # only if this process started it
    return ratios


def report(scale: int, target: str, first: RunFigures, rerun: RunFigures, delta: RunFigures
           ) -> dict[str, tuple[float, float, float]]:
    """The table: one line per object, then the three objects the issue names and the whole run. Returns
    ``{line: (ratio, exact, rerun %)}``."""
    ratios: dict[str, tuple[float, float, float]] = {}
    shown = sum(first.objects[o]["load_s"] + first.objects[o]["extract_s"] for o in SHOWN if o in first.objects)
    print(f"\nscale {scale} on the real {target}: first load {first.rows:,} records in {first.wall:.1f} s "
          f"({first.odoo_calls:,} Odoo calls: prepare_schema {first.schema_s:.1f} s, picklist options "
          f"{first.picklists_s:.1f} s, the objects below {shown:.1f} s (load and extract), the rest "
          f"{first.wall - first.schema_s - first.picklists_s - shown:.1f} s); rerun {rerun.wall:.1f} s "
          f"({rerun.odoo_writes} Odoo writes); empty delta {delta.wall:.1f} s ({delta.odoo_calls} Odoo calls)")
    head = (f"{'object':<16}{'records':>8}{'load s':>8}{'rec/s':>7}{'calls/1k':>9}{'raw s':>7}{'ratio':>7}{'exact':>7}"
            f"{'extract s':>10}{'rerun %':>8}{'delta s':>8}{'delta calls':>12}")
    print(head)
    print("-" * len(head))

    def line(name: str, objs: Sequence[str]) -> None:
        f = [first.objects[o] for o in objs if o in first.objects]
        rows, load_s = sum(x["rows"] for x in f), sum(x["load_s"] for x in f)
        raw_s, ext = sum(x.get("raw_s", 0.0) for x in f), sum(x["extract_s"] for x in f)
        calls = sum(x["calls"] for x in f)
        again = sum(rerun.objects[o]["extract_s"] + rerun.objects[o]["load_s"] for o in objs if o in rerun.objects)
        d = [delta.objects[o] for o in objs if o in delta.objects]
        ratio = f"{load_s / raw_s:.2f}" if raw_s else "-"
        exact_s = raw_s + sum(x.get("raw_after_s", 0.0) for x in f)
        exact = f"{load_s / exact_s:.2f}" if exact_s else "-"
        share = 100 * again / (load_s + ext) if load_s + ext else 0.0
        if raw_s:
            ratios[name] = (load_s / raw_s, load_s / exact_s, share)
        print(f"{name:<16}{rows:>8,}{load_s:>8.1f}{rows / load_s if load_s else 0:>7.0f}"
              f"{1000 * calls / rows if rows else 0:>9.1f}{raw_s:>7.1f}{ratio:>7}{exact:>7}{ext:>10.1f}"
              f"{share:>7.0f}%"
              f"{sum(x['extract_s'] + x['load_s'] for x in d):>8.1f}{sum(x['calls'] for x in d):>12}")

    for name in SHOWN:
        line(name, [name])
    line("3 core objects", ["companies", "contacts", "deals"])
    line("all shown", list(SHOWN))
    return ratios


def spread(scale: int, target: str, runs: Sequence[Mapping[str, tuple[float, float, float]]]) -> None:
    """``--repeat``: each line's ratios over the runs, median and range (the machine's swing, in one view)."""
    runs = [r for r in runs if r]
    if len(runs) < 2:
        return
    print(f"\nscale {scale} on the real {target}, {len(runs)} runs: median [lowest - highest]")
    print(f"{'object':<16}{'ratio':>22}{'exact':>22}{'rerun %':>22}")
    for name in runs[0]:
        cells = []
        for k in range(3):
            got = sorted(r[name][k] for r in runs if name in r)
            fmt = "{:.0f}%" if k == 2 else "{:.2f}"
            cells.append(f"{fmt.format(statistics.median(got))} [{fmt.format(got[0])} - {fmt.format(got[-1])}]")
        print(f"{name:<16}" + "".join(f"{c:>22}" for c in cells))


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("scales", nargs="*", type=int, default=[2, 4])
    ap.add_argument("--target", default="odoo17", choices=["odoo17", "odoo19"])
    ap.add_argument("--keep", action="store_true", help="keep the bench databases")
    ap.add_argument("--verbose", action="store_true", help="where each load's time went (Odoo calls by method)")
    ap.add_argument("--profile", type=Path, metavar="DIR",
                    help="write a cProfile of each object's load tasks to DIR/<scale>-<object>.prof")
    ap.add_argument("--repeat", type=int, default=1, metavar="N",
                    help="run each scale N times and print each line's median and range (a server the bench "
                         "starts is stopped after each run: stop it first for a fresh Odoo each time)")
    args = ap.parse_args()
    for s in args.scales:
        spread(s, args.target, [run(s, args.target, keep=args.keep, verbose=args.verbose, profile=args.profile)
                                for _ in range(max(1, args.repeat))])
    print(f"\nmachine: {machine()}; the real {args.target} server (one Odoo process, its own PostgreSQL) and the "
          "Link app sandbox on loopback; private PostgreSQL for the state DB (fsync off); ratios within one run")
