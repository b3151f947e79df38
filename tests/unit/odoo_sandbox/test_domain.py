"""Domain normalisation and evaluation on the in-memory store (no network)."""

from __future__ import annotations

import pytest

from crm_sandbox.odoo.domain import compile_domain, mentions_active, normalize
from crm_sandbox.odoo.errors import PyError
from crm_sandbox.odoo.server import OdooSandbox


@pytest.fixture(scope="module")
def env() -> OdooSandbox:
    sb = OdooSandbox()
    ex = lambda m, meth, *a, **k: sb.execute_kw("crmtest", 2, "admin", m, meth, list(a), k)  # noqa: E731
    co = ex("res.partner", "create", {"name": "Acme Corp", "is_company": True, "city": "Boston"},
            context={"tracking_disable": True})
    ex("res.partner", "create", [
        {"name": "Jane Doe", "parent_id": co, "email": "jane@acme.example", "color": 3},
        {"name": "john smith", "parent_id": co, "email": False, "color": 7},
        {"name": "Zed 100%", "email": "zed@else.example", "active": False}], context={"tracking_disable": True})
    sb.ids = {r["name"]: rid for rid, r in sb.models["res.partner"].rows.items()}  # type: ignore[attr-defined]
    return sb


def names(env: OdooSandbox, domain: list, model: str = "res.partner") -> set[str]:
    M = env.models[model]
    pred = compile_domain(env, M, domain)
    return {r["name"] for r in M.rows.values() if r["name"] and r["name"].startswith(("Acme", "Jane", "john", "Zed"))
            and pred(r)}


def test_normalize_makes_implicit_and_explicit() -> None:
    a, b, c = ("a", "=", 1), ("b", "=", 2), ("c", "=", 3)
    assert normalize([a, b, c]) == ["&", "&", a, b, c]
    assert normalize(["|", a, b, c]) == ["&", "|", a, b, c]
    assert normalize([]) == [(1, "=", 1)]
    assert normalize([["a", "=", 1]]) == [a]
    with pytest.raises(PyError):
        normalize(["|", a])


def test_mentions_active() -> None:
    assert mentions_active([("active", "=", False)]) and not mentions_active([("name", "=", "x")])


@pytest.mark.parametrize(("domain", "expected"), [
    ([("name", "=", "Jane Doe")], {"Jane Doe"}),
    ([("name", "!=", "Jane Doe")], {"Acme Corp", "john smith", "Zed 100%"}),
    ([("name", "in", ["Jane Doe", "john smith"])], {"Jane Doe", "john smith"}),
    ([("name", "not in", ["Jane Doe", "john smith"])], {"Acme Corp", "Zed 100%"}),
    ([("color", ">", 3)], {"john smith"}),
    ([("color", ">=", 3)], {"Jane Doe", "john smith"}),
    ([("color", "<", 7), ("color", "!=", 0)], {"Jane Doe"}),
    ([("color", "<=", 7), ("is_company", "=", True)], {"Acme Corp"}),
    ([("name", "like", "Doe")], {"Jane Doe"}),
    ([("name", "like", "doe")], set()),
    ([("name", "ilike", "JOHN")], {"john smith"}),
    ([("name", "not ilike", "j")], {"Acme Corp", "Zed 100%"}),
    ([("name", "=like", "J%e")], {"Jane Doe"}),
    ([("name", "=ilike", "j___ %")], {"Jane Doe", "john smith"}),
    ([("name", "ilike", "100%")], {"Zed 100%"}),
    ([("email", "=", False)], {"Acme Corp", "john smith"}),
    ([("email", "!=", False)], {"Jane Doe", "Zed 100%"}),
    ([("email", "ilike", "acme")], {"Jane Doe"}),
    (["|", ("name", "=", "Jane Doe"), ("name", "=", "john smith")], {"Jane Doe", "john smith"}),
    (["!", ("name", "ilike", "j")], {"Acme Corp", "Zed 100%"}),
    (["&", ("is_company", "=", False), "|", ("color", "=", 3), ("color", "=", 7)], {"Jane Doe", "john smith"}),
    ([("parent_id.city", "=", "Boston")], {"Jane Doe", "john smith"}),
    ([("parent_id", "ilike", "acme")], {"Jane Doe", "john smith"}),
    ([("parent_id", "=", "Acme Corp")], {"Jane Doe", "john smith"}),
    ([("parent_id", "=", False), ("name", "!=", "Zed 100%")], {"Acme Corp"}),
    ([(1, "=", 1), ("name", "=like", "A%")], {"Acme Corp"}),
    ([(0, "=", 1)], set()),
    ([("email", "=?", False)], {"Acme Corp", "Jane Doe", "john smith", "Zed 100%"}),
])
def test_operators(env: OdooSandbox, domain: list, expected: set[str]) -> None:
    assert names(env, domain) == expected


def test_child_of_and_parent_of(env: OdooSandbox) -> None:
    co = env.ids["Acme Corp"]  # type: ignore[attr-defined]
    assert names(env, [("id", "child_of", co)]) == {"Acme Corp", "Jane Doe", "john smith"}
    assert names(env, [("id", "parent_of", env.ids["Jane Doe"])]) == {"Acme Corp", "Jane Doe"}  # type: ignore[attr-defined]
    assert names(env, [("parent_id", "child_of", co)]) == {"Jane Doe", "john smith"}


def test_x2many_leaves(env: OdooSandbox) -> None:
    co = env.ids["Acme Corp"]  # type: ignore[attr-defined]
    assert names(env, [("child_ids", "!=", False)]) == {"Acme Corp"}
    assert names(env, [("child_ids", "in", [env.ids["Jane Doe"]])]) == {"Acme Corp"}  # type: ignore[attr-defined]
    assert names(env, [("child_ids.email", "ilike", "jane")]) == {"Acme Corp"}
    assert co


def test_invalid_field_message(env: OdooSandbox) -> None:
    with pytest.raises(PyError) as info:
        compile_domain(env, env.models["res.partner"], [("no_such_field", "=", 1)])
    assert info.value.exception_line == ("ValueError: Invalid field res.partner.no_such_field in leaf "
                                         "('no_such_field', '=', 1)")
    with pytest.raises(PyError):
        compile_domain(env, env.models["res.partner"], [("name", "~", 1)])


def test_search_applies_active_test(env: OdooSandbox) -> None:
    ex = lambda *a, **k: env.execute_kw("crmtest", 2, "admin", "res.partner", "search", list(a), k)  # noqa: E731
    zed = env.ids["Zed 100%"]  # type: ignore[attr-defined]
    assert ex([("name", "=", "Zed 100%")]) == []
    assert ex([("name", "=", "Zed 100%")], context={"active_test": False}) == [zed]
    assert ex([("name", "=", "Zed 100%"), ("active", "=", False)]) == [zed]
    assert ex([("id", "in", [zed, 3])]) == [3]


def test_name_search_read_group_and_call_errors() -> None:
    sb = OdooSandbox()

    def ex(model: str, method: str, *args: object, **kw: object) -> object:
        return sb.execute_kw("crmtest", 2, "admin", model, method, list(args), kw)

    ctx = {"tracking_disable": True}
    ex("crm.lead", "create", [{"name": "A1", "stage_id": 1, "expected_revenue": 10.0},
                              {"name": "A2", "stage_id": 1, "expected_revenue": 5.0},
                              {"name": "B1", "stage_id": 2, "expected_revenue": 1.0}], context=ctx)
    assert ex("res.country", "name_search", "united", limit=2) == [[2, "United Arab Emirates"],
                                                                   [231, "United Kingdom"]]
    assert ex("res.country", "name_search", "United St") == [[233, "United States"]]
    groups = ex("crm.lead", "read_group", [], ["expected_revenue:sum"], ["stage_id"])
    assert [(g["stage_id"], g["stage_id_count"], g["expected_revenue"]) for g in groups] == [
        ([1, "New"], 2, 15.0), ([2, "Qualified"], 1, 1.0)]
    with pytest.raises(PyError) as info:
        ex("crm.lead", "write", [1])
    assert info.value.exception_line == "TypeError: write() missing 1 required positional argument: 'vals'"
    with pytest.raises(PyError) as info:
        ex("crm.lead", "search", [], foo=1)
    assert info.value.exception_line == "TypeError: search() got an unexpected keyword argument 'foo'"
