"""Odoo search domains: prefix-notation normalisation and compilation to a row predicate.

A compiled domain is a function ``row -> bool``. ``env`` gives access to other models (for dotted
paths, relational name matching and ``child_of``); see :class:`DomainEnv`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from .errors import value_error

TRUE_LEAF = (1, "=", 1)
FALSE_LEAF = (0, "=", 1)
OPERATORS = frozenset({"=", "!=", "<=", "<", ">", ">=", "=?", "=like", "=ilike", "like", "not like", "ilike",
                       "not ilike", "in", "not in", "child_of", "parent_of", "any", "not any", "<>", "=="})
_ARITY = {"!": 1, "&": 2, "|": 2}

Predicate = Callable[[dict[str, Any]], bool]


class DomainEnv(Protocol):
    def model(self, name: str) -> Any: ...            # has .name, .fields, .rows, .getter(fname)
    def display_name(self, model: str, rid: int) -> str: ...


def normalize(domain: Iterable[Any] | None) -> list[Any]:
    """Return ``domain`` in explicit prefix notation (implicit ``&`` made explicit), leaves as tuples."""
    if not domain:
        return [TRUE_LEAF]
    result: list[Any] = []
    expected = 1
    for token in domain:
        if expected == 0:
            result[0:0] = ["&"]
            expected = 1
        if isinstance(token, (list, tuple)):
            expected -= 1
            token = tuple(token)
        elif token in _ARITY:
            expected += _ARITY[token] - 1
        else:
            raise value_error(f"Invalid domain term {token!r}")
        result.append(token)
    if expected != 0:
        raise value_error(f"Invalid domain: {list(domain)!r}")
    return result


def mentions_active(domain: Iterable[Any] | None) -> bool:
    return any(isinstance(t, (list, tuple)) and t and t[0] == "active" for t in domain or ())


def _like_regex(pattern: str, *, exact: bool, icase: bool) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
    body = "".join(out)
    if not exact:
        body = f".*{body}.*"
    return re.compile(f"^{body}$", re.S | (re.I if icase else 0))


def _is_null(v: Any) -> bool:
    return v is False or v is None or v == []


def compile_domain(env: DomainEnv, model: Any, domain: Iterable[Any] | None, *, tb_lines: int = 52) -> Predicate:
    """Compile ``domain`` on ``model`` to a predicate over its stored rows."""
    items = normalize(domain)
    pos = 0

    def parse() -> Predicate:
        nonlocal pos
        if pos >= len(items):
            raise value_error("Invalid domain: missing operand")
        item = items[pos]
        pos += 1
        if item == "&":
            a, b = parse(), parse()
            return lambda r: a(r) and b(r)
        if item == "|":
            a, b = parse(), parse()
            return lambda r: a(r) or b(r)
        if item == "!":
            a = parse()
            return lambda r: not a(r)
        return _leaf(env, model, item, tb_lines)

    pred = parse()
    return pred


def _leaf(env: DomainEnv, model: Any, leaf: tuple[Any, ...], tb_lines: int) -> Predicate:
    if leaf in (TRUE_LEAF, (1, "=", 1)) or list(leaf) == [1, "=", 1]:
        return lambda r: True
    if list(leaf) == [0, "=", 1]:
        return lambda r: False
    if len(leaf) != 3:
        raise value_error(f"Invalid leaf {leaf!r}")
    path, op, value = leaf
    op = str(op).lower()
    if op not in OPERATORS or not isinstance(path, str):
        raise value_error(f"Invalid leaf {leaf!r}")
    if op == "<>":
        op = "!="
    if op == "==":
        op = "="
    fname, _, rest = path.partition(".")
    field = model.fields.get(fname)
    if field is None:
        raise value_error(f"Invalid field {model.name}.{fname} in leaf {leaf!r}", tb_lines)
    get = model.getter(fname)
    ftype = field.type
    if rest:
        comodel = env.model(field.relation) if field.relation else None
        if comodel is None:
            return lambda r: False
        sub = _leaf(env, comodel, (rest, op, value), tb_lines)
        rows = comodel.rows
        if ftype == "many2one":
            def pred_m2o(r: dict[str, Any]) -> bool:
                v = get(r)
                row = rows.get(v) if v else None
                return bool(row) and sub(row)
            return pred_m2o

        def pred_x2m(r: dict[str, Any]) -> bool:
            return any(sub(rows[i]) for i in get(r) or () if i in rows)
        return pred_x2m
    if op in ("any", "not any"):
        comodel = env.model(field.relation) if field.relation else None
        if comodel is None:
            return lambda r: op == "not any"
        sub = compile_domain(env, comodel, value, tb_lines=tb_lines)
        rows = comodel.rows
        ids_of = (lambda v: [v] if v else []) if ftype == "many2one" else (lambda v: v or [])

        def pred_any(r: dict[str, Any]) -> bool:
            hit = any(sub(rows[i]) for i in ids_of(get(r)) if i in rows)
            return hit if op == "any" else not hit
        return pred_any
    if op == "=?":
        # 19 drops the leaf for any empty value (0, "", []); 17 for False and None only
        if value is False or value is None or (not value and getattr(env, "version", 17) >= 19):
            return lambda r: True
        op = "="
    relational = ftype in ("many2one", "one2many", "many2many")
    if op in ("child_of", "parent_of"):
        target = env.model(field.relation) if relational else model
        ids = _hierarchy_ids(env, target, value, op)
        if ftype == "many2one":
            return lambda r: get(r) in ids
        if relational:
            return lambda r: any(i in ids for i in get(r) or ())
        return lambda r: r["id"] in ids
    if relational and (isinstance(value, str) or op in ("like", "ilike", "=like", "=ilike", "not like",
                                                         "not ilike")):
        # match on the comodel's display name (Odoo does a name_search)
        comodel_name = field.relation
        name_pred = _scalar_pred(op, value, "char")
        if ftype == "many2one":
            def pred_name(r: dict[str, Any]) -> bool:
                v = get(r)
                return name_pred(env.display_name(comodel_name, v) if v else False)
            return pred_name

        def pred_names(r: dict[str, Any]) -> bool:
            ids = get(r) or []
            if op.startswith("not") or op == "!=":
                return all(name_pred(env.display_name(comodel_name, i)) for i in ids)
            return any(name_pred(env.display_name(comodel_name, i)) for i in ids)
        return pred_names
    if ftype in ("one2many", "many2many"):
        return _x2many_pred(op, value, get)
    if ftype in NUMBERS and op in ("=", "!=", "in", "not in", "<", "<=", ">", ">="):
        num = _number_pred(op, value, getattr(env, "version", 17) >= 19)
        if hasattr(model, "column_getter"):
            column = model.column_getter(fname)
            return lambda r: num(column(r))
        return lambda r: num(get(r))
    base = _scalar_pred(op, value, ftype)
    return lambda r: base(get(r))


def _hierarchy_ids(env: DomainEnv, model: Any, value: Any, op: str) -> set[int]:
    if isinstance(value, str):
        start = {rid for rid in model.rows if env.display_name(model.name, rid) == value}
    elif isinstance(value, (list, tuple)):
        start = {int(v) for v in value if v}
    elif value:
        start = {int(value)}
    else:
        start = set()
    parent_f = "parent_id" if "parent_id" in model.fields else None
    if parent_f is None:
        return start
    result = set(start)
    if op == "child_of":
        children: dict[int, list[int]] = {}
        for rid, row in model.rows.items():
            p = row.get(parent_f)
            if p:
                children.setdefault(p, []).append(rid)
        todo = list(start)
        while todo:
            for c in children.get(todo.pop(), ()):
                if c not in result:
                    result.add(c)
                    todo.append(c)
    else:
        for rid in start:
            seen = set()
            p = model.rows.get(rid, {}).get(parent_f)
            while p and p not in seen:
                seen.add(p)
                result.add(p)
                p = model.rows.get(p, {}).get(parent_f)
    return result


def _x2many_pred(op: str, value: Any, get: Callable[[dict[str, Any]], Any]) -> Predicate:
    if op in ("=", "!=") and (value is False or value is None or value == []):
        empty = op == "="
        return lambda r: (not get(r)) == empty
    if op in ("=", "in", "!=", "not in"):
        vals = set(value) if isinstance(value, (list, tuple, set)) else {value}
        positive = op in ("=", "in")
        want_empty = False in vals or None in vals
        vals.discard(False)
        vals.discard(None)

        def pred(r: dict[str, Any]) -> bool:
            ids = get(r) or []
            hit = any(i in vals for i in ids) or (want_empty and not ids)
            return hit if positive else not hit
        return pred
    return lambda r: False


NUMBERS = frozenset({"integer", "float", "monetary"})
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
                                                   ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}


def _number(value: Any) -> Any:
    """A domain's value for a number field as the column compares it (None: False or None, i.e. NULL)."""
    if value is False or value is None:
        return None
    if isinstance(value, (bool, int, float)):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def _number_pred(op: str, value: Any, v19: bool) -> Callable[[Any], bool]:
    """A number field's leaf over the column's value (None: NULL, a number never given). 17 tells NULL from 0 as SQL
    does: ``= False`` is ``IS NULL``, ``!= False`` ``IS NOT NULL``, ``= 0`` and a comparison never hold on NULL,
    ``!=``/``not in`` a value that is not 0 hold on it. 19 takes NULL, False and None for 0 throughout (the
    ``falsy_value`` of its number fields)."""
    if op in ("in", "not in"):
        given = [_number(x) for x in (value if isinstance(value, (list, tuple, set)) else [value])]
    else:
        given = [_number(value)]
    if v19:
        wanted = {0.0 if x is None else x for x in given}
        if op in ("=", "in"):
            return lambda v: (0.0 if v is None else v) in wanted
        if op in ("!=", "not in"):
            return lambda v: (0.0 if v is None else v) not in wanted
        bound, cmp = 0.0 if given[0] is None else given[0], _COMPARE[op]
        return lambda v: _compares(cmp, 0.0 if v is None else v, bound)
    want_null, values = None in given, {x for x in given if x is not None}
    if op in ("=", "in"):
        return lambda v: want_null if v is None else v in values
    if op in ("!=", "not in"):
        # SQL's NOT IN holds on NULL unless False is among the values; but ``!= 0``: Odoo 17 adds no "OR IS NULL"
        null_ok = not want_null and not (op == "!=" and not value)
        return lambda v: null_ok if v is None else v not in values
    if given[0] is None:
        return lambda v: False
    bound, cmp = given[0], _COMPARE[op]
    return lambda v: v is not None and _compares(cmp, v, bound)


def _compares(cmp: Callable[[Any, Any], bool], a: Any, b: Any) -> bool:
    try:
        return cmp(a, b)
    except TypeError:
        return cmp(str(a), str(b))


def _scalar_pred(op: str, value: Any, ftype: str) -> Callable[[Any], bool]:
    if op in ("=", "!="):
        positive = op == "="
        if value is False or value is None:
            if ftype == "boolean":
                return lambda v: (not v) == positive
            return lambda v: _is_null(v) == positive
        if ftype == "boolean":
            return lambda v: (bool(v) == bool(value)) == positive
        if ftype in ("float", "monetary", "integer") and isinstance(value, (int, float)):
            return lambda v: (v is not False and v is not None and float(v) == float(value)) == positive
        return lambda v: (v == value) == positive
    if op in ("in", "not in"):
        vals = list(value) if isinstance(value, (list, tuple, set)) else [value]
        positive = op == "in"
        want_null = any(x is False or x is None for x in vals)
        if ftype == "boolean":
            bools = {bool(x) for x in vals if x is not None}
            return lambda v: (bool(v) in bools) == positive
        vset = {x for x in vals if x is not False and x is not None}
        return lambda v: ((v in vset and not _is_null(v)) or (want_null and _is_null(v))) == positive
    if op in ("<", "<=", ">", ">="):
        if value is False or value is None:
            return lambda v: False
        cmp = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b,
               ">": lambda a, b: a > b, ">=": lambda a, b: a >= b}[op]

        def pred_cmp(v: Any) -> bool:
            if _is_null(v) and ftype != "boolean" and not (ftype in ("integer", "float", "monetary")
                                                            and v == 0):
                return False
            try:
                return cmp(v, value)
            except TypeError:
                return cmp(str(v), str(value))
        return pred_cmp
    # like family
    negative = op.startswith("not ")
    base_op = op[4:] if negative else op
    if value is False or value is None:
        return lambda v: _is_null(v) != negative
    pattern = str(value)
    exact = base_op.startswith("=")
    icase = base_op.endswith("ilike")
    if not exact and pattern == "":
        return lambda v: not negative
    rx = _like_regex(pattern, exact=exact, icase=icase)

    def pred_like(v: Any) -> bool:
        if _is_null(v):
            return negative
        return bool(rx.match(str(v))) != negative
    return pred_like
