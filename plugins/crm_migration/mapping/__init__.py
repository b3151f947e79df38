"""The mapping layer: pair files (``include/pairs/<pair>.yaml``) → typed specs → Odoo values.

- :mod:`.spec`: ``load_pair(name_or_path) -> PairSpec`` (validated, objects in dependency order);
- :mod:`.transforms`: pure transforms registered by name (``fn:`` in the file);
- :mod:`.mapper`: ``refs_needed`` / ``lookups_needed`` → a ``Refs`` → ``map_batch`` → loader rows;
  ``break_cycles`` / ``hierarchy_levels`` for company trees; ``resolve_owners``, ``CountryIndex``,
  ``StateIndex`` to build the lookups.

How the engine uses it, per run::

    pair = load_pair("apto_to_odoo").with_namespace(apto.namespace)          # <ns> → McLabs2
    pair = pair.with_custom_fields(pair.plan_custom_fields(describes))        # describe custom: true → x_ fields
    for name in pair.order():                                                 # dependencies first
        obj = pair.objects[name]
        # obj.stream: kind soql → streams.soql.stream_from_spec(obj.stream, source_object=obj.source_object);
        #   kind pipeline_stages / tooling: see the object's doc in the pair file.
        # obj.enrich: attach child rows (``{Name: {object, match, fields}}``) or bytes (``_blob: {url}``)
        # obj.hierarchy: records, report = break_cycles(...); load hierarchy_levels(records) level by level
        # per batch: ids = crosswalk lookup per object of refs_needed(obj, records) (scope:
        #   pair.objects[o].key_object), lookups from lookups_needed(obj, records) → StaticRefs
        rows = map_batch(obj, records, refs)
        load_batch(odoo, state, Target(**pair.target_kwargs(name)), rows, ...)   # context: obj.target.context
        # then write row["deferred"] (fields Odoo overwrites on create/with others) in a second write
"""

from __future__ import annotations

from crm_migration.mapping.mapper import (
    CountryIndex,
    Refs,
    Row,
    StateIndex,
    StaticRefs,
    break_cycles,
    hierarchy_levels,
    lookups_needed,
    map_batch,
    map_record,
    refs_needed,
    resolve_owners,
)
from crm_migration.mapping.spec import FieldSpec, ObjectSpec, PairSpec, SpecError, load_pair, parse_pair
from crm_migration.mapping.transforms import TRANSFORMS, TransformError, transform

__all__ = [
    "TRANSFORMS", "CountryIndex", "FieldSpec", "ObjectSpec", "PairSpec", "Refs", "Row", "SpecError", "StateIndex",
    "StaticRefs", "TransformError", "break_cycles", "hierarchy_levels", "load_pair", "lookups_needed",
    "map_batch", "map_record", "parse_pair", "refs_needed", "resolve_owners", "transform",
]
