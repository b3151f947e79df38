"""The package carries its own copies of the captures, identical to ../shared/odoo17."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from crm_sandbox.odoo.errors import PyError, UserError, missing_error


@pytest.mark.parametrize("name", ["fields.json", "records.json", "faults.json"])
def test_packaged_copy_equals_shared(shared_dir, name: str) -> None:
    packaged = resources.files("crm_sandbox.odoo").joinpath("data", name).read_bytes()
    assert packaged == (shared_dir / "odoo17" / name).read_bytes()
    assert json.loads(packaged)


def test_traceback_has_the_asked_length_and_last_line() -> None:
    err = PyError("KeyError", "'no_such_col'", tb_lines=35, arguments=["no_such_col"])
    lines = err.traceback().splitlines()
    assert len(lines) == 35 and lines[0] == "Traceback (most recent call last):"
    assert lines[-1] == "KeyError: 'no_such_col'"
    assert err.json_data()["arguments"] == ["no_such_col"] and err.json_data()["name"] == "builtins.KeyError"


def test_fault_shapes() -> None:
    err = missing_error("res.partner", [999999], 2)
    assert err.xmlrpc_fault() == (2, "Record does not exist or has been deleted.\n(Record: res.partner(999999,), User: 2)")
    assert err.legacy_fault() == ("warning -- MissingError\n\n" + err.message, "")
    assert UserError("x").legacy_fault() == ("warning -- UserError\n\nx", "")
    assert err.json_error()["data"]["name"] == "odoo.exceptions.MissingError"
