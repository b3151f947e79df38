"""Checks of a plan's proposed mapping against the sandbox that was planned (shared by the plan suites)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import yaml

from crm_migration.mapping.propose import precision_recall
from crm_migration.mapping.spec import load_pair, parse_pair

#: the floors the proposer reaches on the sandboxes (measured on the sandbox, the real Odoo 17 and 19: Apto and Link
#: app precision 1.00, recall 1.00: 56 and 46 links of the pair files' standard fields)
FLOORS = {"apto_to_odoo": (1.0, 1.0), "link_app_to_odoo": (1.0, 1.0)}


def score(plan: Any, pair: str, *, version: int | None = None) -> dict[str, Any]:
    """Precision and recall of the plan's proposal against ``include/pairs/<pair>.yaml`` (as resolved for Odoo
    ``version``: its ``targets:`` overrides), printed."""
    prop = plan.proposal
    truth = load_pair(pair).with_namespace(plan.namespace or None)
    result = precision_recall(prop["rows"], prop["entries"], truth.for_target(version) if version else truth)
    print(f"\n{pair}: field -> Odoo field vs include/pairs/{pair}.yaml: precision {result['precision']:.3f}, recall "
          f"{result['recall']:.3f} ({result['agree']} of {result['proposed']} proposed, {result['in the pair file']} "
          f"in the pair file); missed: {result['missed']}")
    return result


def holds(ttype: str, value: Any, size: int | None) -> bool:
    """Whether an Odoo field of ``ttype`` holds ``value`` as the migration writes it (checked here on its own)."""
    if ttype in ("char", "text", "html", "selection"):
        text = ";".join(map(str, value)) if isinstance(value, list) else str(value)
        return ttype != "char" or size is None or len(text) <= size
    if ttype in ("float", "monetary"):
        return isinstance(value, int | float) and not isinstance(value, bool)
    if ttype == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if ttype == "boolean":
        return isinstance(value, bool)
    if ttype == "date":
        return bool(date.fromisoformat(str(value)))
    if ttype == "datetime":
        return bool(datetime.fromisoformat(str(value).replace("Z", "+00:00").replace("+0000", "+00:00")))
    if ttype == "many2one":
        return isinstance(value, str) and len(value) in (15, 18)
    return False


def _get(record: dict[str, Any], path: str) -> Any:
    if path.startswith("custom_fields."):
        return (record.get("custom_fields") or {}).get(path.split(".", 1)[1])
    return record.get(path)


def check_custom_types(plan: Any, state: Any, *, apto: bool) -> None:
    """Every custom field of the proposal lands in a field whose type holds every value the sandbox holds for it
    (not only the sampled ones); on Apto, no two custom fields of an object share an x_ field."""
    custom = [r for r in plan.proposal["rows"] if r["custom"] or str(r["source field"]).startswith("custom_fields.")]
    assert len(custom) >= 20
    for r in custom:
        assert r["target"], r                                     # every custom field lands somewhere
        if r["kind"] == "existing":
            continue                                            # a standard field (and its own x_ field too)
        obj, path = r["object"], r["source field"]
        values = [v for v in (_get(rec, path) for rec in state.tables[obj].values()) if v not in (None, "", [])]
        size = None
        if apto and r["ttype"] == "char":
            fdef = state.schema[obj].field(path)
            size = fdef.length if fdef and fdef.length else 255 if fdef and fdef.type in ("string", "url", "email") \
                else None
        bad = [v for v in values if not holds(r["ttype"], v, size)]
        assert not bad, (path, r["ttype"], bad[:3])
    if apto:
        spec = parse_pair(yaml.safe_load(plan.proposal["yaml"]), origin="proposal").with_namespace(plan.namespace)
        for obj in ("Account", "Contact", "Opportunity"):
            plans = spec.plan_custom_fields({obj: [f.describe() for f in state.schema[obj].fields]}).get(obj, [])
            assert len({cf.name for cf in plans}) == len(plans), obj
