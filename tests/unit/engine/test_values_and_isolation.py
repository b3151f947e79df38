"""Pure parts of the loader: canonical values, changed fields, hashing, bad-row isolation, creation levels."""

from __future__ import annotations

import math

import pytest

from crm_migration.engine.load import Target, _creation_levels, _isolating
from crm_migration.engine.values import canonical, changed_fields, content_hash, to_write
from crm_migration.hooks.odoo import OdooRecordError

FIELDS = {"name": {"type": "char"}, "parent_id": {"type": "many2one"}, "tag_ids": {"type": "many2many"},
          "expected_revenue": {"type": "monetary"}, "active": {"type": "boolean"}, "color": {"type": "integer"},
          "description": {"type": "html"}}


@pytest.mark.parametrize(("value", "ftype", "expected"), [
    ([7, "Acme"], "many2one", 7),
    (7, "many2one", 7),
    (False, "many2one", False),
    (None, "char", False),
    ("", "char", False),
    (0, "integer", 0),                   # zero is a value, not "empty"
    (0.0, "monetary", 0.0),
    (1234.5000001, "monetary", 1234.5),
    ([(6, 0, [3, 1])], "many2many", [1, 3]),
    ([3, 1], "many2many", [1, 3]),
    ([(4, 5), (4, 2), (3, 5)], "many2many", [2]),
    (False, "many2many", []),
    (None, "boolean", False),
    ("aGVsbG8=", "binary", "sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),     # b"hello"
    ("sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d", "binary", "sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"),
    ("x", "boolean", True),
])
def test_canonical(value, ftype, expected):
    assert canonical(value, ftype) == expected


def test_changed_fields_compares_read_and_write_forms():
    read_back = {"name": "Acme", "parent_id": [9, "Parent"], "tag_ids": [2, 1], "expected_revenue": 10.0,
                 "active": True, "color": 0}
    new = {"name": "Acme", "parent_id": 9, "tag_ids": [(6, 0, [1, 2])], "expected_revenue": 10,
           "active": True, "color": 0}
    assert changed_fields(new, read_back, FIELDS) == {}
    assert changed_fields({**new, "name": "Acme Inc", "color": 3}, read_back, FIELDS) == {"name": "Acme Inc", "color": 3}
    assert changed_fields({"description": "<p>x</p>"}, {}, FIELDS) == {"description": "<p>x</p>"}


def test_content_hash_is_order_independent_and_value_sensitive():
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash({"b": [1, 2], "a": 1})
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_to_write_turns_ids_into_a_set_command():
    assert to_write([1, 2], "many2many") == [(6, 0, [1, 2])]
    assert to_write("x", "char") == "x"


def test_target_key_follows_the_contract():
    t = Target(pair="apto_to_odoo", source="apto", source_object="Contact", model="res.partner")
    assert t.key("0035g00000abcDE") == "apto:Contact:0035g00000abcDE"
    with pytest.raises(ValueError, match="conflict_policy"):
        Target(pair="p", source="s", source_object="o", model="m", conflict_policy="ignore")


@pytest.mark.parametrize(("n", "bad"), [(1, {0}), (8, {5}), (100, {0}), (1000, {999}), (1000, {3, 700}),
                                        (64, set())])
def test_isolating_finds_each_bad_row_and_writes_good_rows_once(n, bad):
    calls, written = [], []

    def call(chunk):
        calls.append(list(chunk))
        hits = bad & set(chunk)
        if hits:
            raise OdooRecordError(f"bad row {min(hits)}", field="email", model="res.partner", method="create")
        written.extend(chunk)

    failed = _isolating(list(range(n)), call)
    assert {i for i, _ in failed} == bad
    assert all(exc.field == "email" for _, exc in failed)
    assert sorted(written) == sorted(set(range(n)) - bad)        # each good row once
    if len(bad) == 1 and n > 1:
        assert len(calls) - 1 <= 2 * math.ceil(math.log2(n))     # ~2·log2(n) extra calls


def test_creation_levels_put_a_new_parent_of_the_batch_one_call_before_its_children():
    def rid(row):
        return ("Account", row["source_id"])

    rows = [{"source_id": "c", "after": ("parent_id", "b")}, {"source_id": "a"},
            {"source_id": "b", "after": ("parent_id", "a")}, {"source_id": "d", "after": ("parent_id", "x")},
            {"source_id": "e", "after": ("parent_id", "a")}]
    # x is not created by this batch: d goes with the first level (without a parent); each level keeps the order
    assert _creation_levels(rows, rid) == [[1, 3], [2, 4], [0]]
    assert _creation_levels([{"source_id": "a"}, {"source_id": "b"}], rid) == [[0, 1]]     # one call, as given
    assert _creation_levels([], rid) == []


def test_creation_levels_put_a_value_one_call_may_hold_once_in_rounds_in_order():
    """Odoo 17 refuses one create of two activities of one user on one record he does not follow yet: round k holds
    each (record, user)'s k-th row, in the given order; one round when none repeats; after the parents' levels."""
    def rid(row):
        return ("Task", row["source_id"])

    rows = [{"source_id": str(i), "key": k} for i, k in enumerate("abacbad")]
    assert _creation_levels(rows, rid, lambda i: rows[i]["key"]) == [[0, 1, 3, 6], [2, 4], [5]]
    assert _creation_levels(rows[:2], rid, lambda i: rows[i]["key"]) == [[0, 1]]
    assert _creation_levels([], rid, lambda i: i) == []
    parents = [{"source_id": "p", "key": "a"}, {"source_id": "c1", "after": ("parent_id", "p"), "key": "b"},
               {"source_id": "c2", "after": ("parent_id", "p"), "key": "b"}]
    assert _creation_levels(parents, rid, lambda i: parents[i]["key"]) == [[0], [1], [2]]
