"""What a rerun compares before it fetches or maps: which flagged rows map again, which keys a source hash leaves out."""

from __future__ import annotations

import pytest

from crm_migration.engine.pipeline import _may_resolve, _volatile
from crm_migration.mapping.spec import load_pair


@pytest.fixture(scope="module")
def spec():
    return load_pair("link_app_to_odoo")


@pytest.mark.parametrize(("warnings", "again"), [
    ([], False),
    ([("email", "not an email address: kept as written")], False),     # stays so until the source changes
    ([("parent_id", "companies 42 not migrated (yet)")], True),          # the company may land later
    ([("country_id", "country 'Atlantis' not found in Odoo")], True),    # a lookup may find it later
    ([("email", "kept"), ("user_id", "owner 'x' not found in Odoo")], True),
    ([("res_id", "not in the object's fields")], True),                  # not the object's own: unknown, map again
])
def test_a_row_maps_again_only_when_a_later_run_may_clear_its_flag(spec, warnings, again):
    row = {"source_id": "1", "values": {}, "warnings": warnings}
    assert _may_resolve(spec.object("contacts"), row) is again


def test_a_files_url_is_left_out_of_its_source_hash_and_nothing_else(spec):
    assert _volatile(spec.object("attachments")) == ["url"]       # a signed URL may change on every read
    assert _volatile(spec.object("contacts")) == []
    assert _volatile(load_pair("apto_to_odoo").object("ContentVersion")) == []     # a path template, stable
