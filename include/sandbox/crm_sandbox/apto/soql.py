"""A SOQL lexer, parser and evaluator: the subset the project's hook sends, answered as Salesforce does.

Supported: ``SELECT`` field list (fields, parent relationship paths up to five levels such as
``Owner.Email`` or ``Account.Owner.Email``, polymorphic ``What.Type``,
``COUNT()``, ``COUNT(field) [alias]``, ``FIELDS(ALL|STANDARD|CUSTOM)``), ``FROM``, ``WHERE`` with
``AND`` / ``OR`` / ``NOT`` and parentheses (mixing ``AND`` and ``OR`` without parentheses is a
``MALFORMED_QUERY``, as in Salesforce), ``= != <> < <= > >=``, ``[NOT] IN (...)`` (literals or a
semi-join ``IN (SELECT Id FROM ...)``), ``LIKE`` with ``%`` / ``_``, ``INCLUDES`` / ``EXCLUDES``,
``null``, booleans, string literals with escapes, numbers, datetime and date literals, date constants
(``TODAY``, ``LAST_N_DAYS:n`` ...), ``ORDER BY`` (several keys, ``ASC``/``DESC``,
``NULLS FIRST``/``LAST``), ``LIMIT``, ``OFFSET``. Not supported (answered ``MALFORMED_QUERY``): ``GROUP BY``
/ ``HAVING``, aggregates other than ``COUNT``, child-relationship subqueries in ``SELECT``, ``TYPEOF``,
an alias on the ``FROM`` object.

Parsing (:func:`parse`) needs no schema. :func:`compile_query` checks the parsed query against a
:class:`Catalog` (object and field names, case-insensitive, as Salesforce) and returns a
:class:`CompiledQuery` whose ``predicate`` filters raw records and whose ``sort`` orders them.

Stored values follow these conventions: datetimes are UTC strings ``YYYY-MM-DDTHH:MM:SS.000+0000``
(so they compare as strings), dates ``YYYY-MM-DD``, numbers ``int``/``float``, booleans ``bool``,
multi-select picklists ``"A;B"``, blanks ``None``.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol

from .ids import is_id, to18


class SoqlError(Exception):
    """A query Salesforce would refuse; ``error_code`` is its ``errorCode``."""

    def __init__(self, error_code: str, message: str) -> None:
        super().__init__(message)
        self.error_code, self.message = error_code, message


def _located(text: str, pos: int, message: str) -> str:
    """Salesforce's error message form: the query line, a caret, the row and column, the message."""
    pos = max(0, min(pos, len(text)))
    row = text.count("\n", 0, pos) + 1
    line_start = text.rfind("\n", 0, pos) + 1
    line_end = text.find("\n", pos)
    line = text[line_start:line_end if line_end >= 0 else len(text)]
    col = pos - line_start + 1
    return f"{line}\n{' ' * (col - 1)}^\nERROR at Row:{row}:Column:{col}\n{message}"


# --------------------------------------------------------------------------------------------- lexer

@dataclass(frozen=True)
class Token:
    kind: str   # IDENT STRING NUMBER DATETIME DATE OP LPAREN RPAREN COMMA COLON EOF
    value: Any
    pos: int
    raw: str = ""


_TOKEN_RE = re.compile(
    r"""(?P<ws>\s+)
    |(?P<DATETIME>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,3})?(?:Z|[+-]\d{2}:?\d{2}))
    |(?P<DATE>\d{4}-\d{2}-\d{2}(?![\dT]))
    |(?P<NUMBER>[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
    |(?P<IDENT>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)
    |(?P<OP>!=|<>|<=|>=|=|<|>)
    |(?P<LPAREN>\()|(?P<RPAREN>\))|(?P<COMMA>,)|(?P<COLON>:)|(?P<QUOTE>')""",
    re.VERBOSE,
)
_ESCAPES = {"n": "\n", "N": "\n", "r": "\r", "R": "\r", "t": "\t", "T": "\t", "b": "\b", "B": "\b",
            "f": "\f", "F": "\f", '"': '"', "'": "'", "\\": "\\", "%": "%", "_": "_"}


def _read_string(text: str, start: int) -> tuple[str, str, int]:
    """Read a quoted literal whose opening quote is at ``start``: (value, raw body, end)."""
    i, out = start + 1, []
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            if i + 1 >= len(text):
                break
            nxt = text[i + 1]
            if nxt == "u" and re.fullmatch(r"[0-9a-fA-F]{4}", text[i + 2:i + 6]):
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt not in _ESCAPES:
                raise SoqlError("MALFORMED_QUERY", _located(
                    text, i, "Invalid string literal '" + text[start + 1:i + 2] + "'. Illegal escape sequence"))
            out.append(_ESCAPES[nxt])
            i += 2
        elif ch == "'":
            return "".join(out), text[start + 1:i], i + 1
        else:
            out.append(ch)
            i += 1
    raise SoqlError("MALFORMED_QUERY", _located(text, start, "unterminated string literal"))


def tokenize(text: str) -> list[Token]:
    tokens: list[Token] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise SoqlError("MALFORMED_QUERY", _located(
                text, pos, f"line 1:{pos} no viable alternative at character '{text[pos]}'"))
        kind = m.lastgroup
        if kind == "ws":
            pos = m.end()
            continue
        if kind == "QUOTE":
            value, raw, end = _read_string(text, pos)
            tokens.append(Token("STRING", value, pos, raw))
            pos = end
            continue
        val = m.group(kind)
        if kind == "NUMBER" and val[0] in "+-" and tokens and tokens[-1].kind in {"IDENT", "NUMBER", "RPAREN"}:
            # "a-1" is not valid SOQL anyway; keep the sign with the number
            pass
        tokens.append(Token(kind, val, pos, val))
        pos = m.end()
    tokens.append(Token("EOF", None, len(text), "<EOF>"))
    return tokens


# ---------------------------------------------------------------------------------------------- AST

@dataclass(frozen=True)
class Literal:
    kind: str          # string number null boolean datetime date constant
    value: Any         # constant: (name, n | None)
    pos: int
    raw: str = ""      # string literal body as written (for LIKE escapes)


@dataclass(frozen=True)
class FieldRef:
    path: str
    pos: int


@dataclass(frozen=True)
class Compare:
    field: FieldRef
    op: str
    value: Literal


@dataclass(frozen=True)
class InList:
    field: FieldRef
    values: tuple[Literal, ...] | Query
    negate: bool


@dataclass(frozen=True)
class Like:
    field: FieldRef
    pattern: Literal


@dataclass(frozen=True)
class Includes:
    field: FieldRef
    values: tuple[Literal, ...]
    negate: bool       # EXCLUDES


@dataclass(frozen=True)
class BoolOp:
    op: str            # AND OR
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Not:
    item: Any


@dataclass(frozen=True)
class SelectField:
    path: str
    pos: int


@dataclass(frozen=True)
class SelectCount:
    path: str | None   # None: COUNT()
    alias: str | None
    pos: int


@dataclass(frozen=True)
class SelectFields:
    which: str         # ALL STANDARD CUSTOM
    pos: int


@dataclass(frozen=True)
class OrderItem:
    field: FieldRef
    desc: bool
    nulls_first: bool


@dataclass(frozen=True)
class Query:
    text: str
    select: tuple[Any, ...]
    sobject: str
    sobject_pos: int
    where: Any
    order: tuple[OrderItem, ...]
    limit: int | None
    offset: int | None


KEYWORDS = {"SELECT", "FROM", "WHERE", "AND", "OR", "NOT", "IN", "LIKE", "ORDER", "BY", "ASC", "DESC",
            "NULLS", "FIRST", "LAST", "LIMIT", "OFFSET", "NULL", "TRUE", "FALSE", "INCLUDES", "EXCLUDES",
            "GROUP", "HAVING", "WITH", "FOR", "USING", "TYPEOF"}
DATE_CONSTANTS = {"YESTERDAY", "TODAY", "TOMORROW", "LAST_WEEK", "THIS_WEEK", "NEXT_WEEK", "LAST_MONTH",
                  "THIS_MONTH", "NEXT_MONTH", "LAST_90_DAYS", "NEXT_90_DAYS", "THIS_YEAR", "LAST_YEAR",
                  "NEXT_YEAR"}
DATE_N_CONSTANTS = {"LAST_N_DAYS", "NEXT_N_DAYS", "N_DAYS_AGO", "LAST_N_WEEKS", "NEXT_N_WEEKS",
                    "LAST_N_MONTHS", "NEXT_N_MONTHS", "LAST_N_YEARS", "NEXT_N_YEARS"}


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0

    # token helpers
    @property
    def tok(self) -> Token:
        return self.tokens[self.i]

    def kw(self, *words: str) -> bool:
        t = self.tok
        return t.kind == "IDENT" and t.value.upper() in words

    def next(self) -> Token:
        t = self.tokens[self.i]
        self.i += 1
        return t

    def unexpected(self, tok: Token | None = None) -> SoqlError:
        t = tok or self.tok
        shown = "<EOF>" if t.kind == "EOF" else (f"'{t.raw}'" if t.kind == "STRING" else t.raw)
        return SoqlError("MALFORMED_QUERY", _located(self.text, t.pos, f"unexpected token: {shown}"))

    def expect_kw(self, word: str) -> Token:
        if not self.kw(word):
            raise self.unexpected()
        return self.next()

    def expect(self, kind: str) -> Token:
        if self.tok.kind != kind:
            raise self.unexpected()
        return self.next()

    def ident(self) -> Token:
        t = self.tok
        if t.kind != "IDENT" or t.value.upper() in KEYWORDS - {"FIRST", "LAST"}:
            raise self.unexpected()
        return self.next()

    # grammar
    def query(self, *, nested: bool = False) -> Query:
        self.expect_kw("SELECT")
        select = self.select_list()
        self.expect_kw("FROM")
        obj = self.ident()
        if "." in obj.value:
            raise self.unexpected(obj)
        where = None
        if self.kw("USING"):
            raise self.unexpected()
        if self.kw("WHERE"):
            self.next()
            where = self.condition()
        if self.kw("WITH"):
            self.next()
            self.expect_kw("SECURITY_ENFORCED") if self.kw("SECURITY_ENFORCED") else self.ident()
        if self.kw("GROUP", "HAVING"):
            raise SoqlError("MALFORMED_QUERY", _located(self.text, self.tok.pos,
                                                        "GROUP BY is not supported by the Apto sandbox"))
        order: list[OrderItem] = []
        if self.kw("ORDER"):
            self.next()
            self.expect_kw("BY")
            order.append(self.order_item())
            while self.tok.kind == "COMMA":
                self.next()
                order.append(self.order_item())
        limit = offset = None
        if self.kw("LIMIT"):
            self.next()
            limit = self.integer()
        if self.kw("OFFSET"):
            self.next()
            offset = self.integer()
        if self.kw("FOR"):
            self.next()
            self.ident()
        if not nested and self.tok.kind != "EOF":
            raise self.unexpected()
        return Query(self.text, tuple(select), obj.value, obj.pos, where, tuple(order), limit, offset)

    def integer(self) -> int:
        t = self.tok
        if t.kind != "NUMBER" or not re.fullmatch(r"\d+", t.value):
            raise self.unexpected()
        self.next()
        return int(t.value)

    def select_list(self) -> list[Any]:
        items = [self.select_item()]
        while self.tok.kind == "COMMA":
            self.next()
            items.append(self.select_item())
        return items

    def select_item(self) -> Any:
        t = self.tok
        if t.kind == "LPAREN":
            raise SoqlError("MALFORMED_QUERY", _located(self.text, t.pos,
                                                        "child relationship subqueries are not supported by the Apto sandbox"))
        if t.kind == "IDENT" and t.value.upper() == "COUNT" and self.tokens[self.i + 1].kind == "LPAREN":
            self.next()
            self.next()
            path = None
            if self.tok.kind != "RPAREN":
                path = self.ident().value
            self.expect("RPAREN")
            alias = None
            if self.tok.kind == "IDENT" and self.tok.value.upper() not in KEYWORDS:
                alias = self.next().value
            return SelectCount(path, alias, t.pos)
        if t.kind == "IDENT" and t.value.upper() == "FIELDS" and self.tokens[self.i + 1].kind == "LPAREN":
            self.next()
            self.next()
            which = self.ident().value.upper()
            if which not in {"ALL", "STANDARD", "CUSTOM"}:
                raise self.unexpected(self.tokens[self.i - 1])
            self.expect("RPAREN")
            return SelectFields(which, t.pos)
        tok = self.ident()
        return SelectField(tok.value, tok.pos)

    def order_item(self) -> OrderItem:
        f = self.ident()
        desc = False
        if self.kw("ASC", "DESC"):
            desc = self.next().value.upper() == "DESC"
        nulls_first = not desc
        if self.kw("NULLS"):
            self.next()
            if not self.kw("FIRST", "LAST"):
                raise self.unexpected()
            nulls_first = self.next().value.upper() == "FIRST"
        return OrderItem(FieldRef(f.value, f.pos), desc, nulls_first)

    def condition(self) -> Any:
        first = self.unary()
        if not self.kw("AND", "OR"):
            return first
        op = self.tok.value.upper()
        items = [first]
        while self.kw("AND", "OR"):
            if self.tok.value.upper() != op:
                raise self.unexpected()   # Salesforce wants parentheses when AND and OR mix
            self.next()
            items.append(self.unary())
        return BoolOp(op, tuple(items))

    def unary(self) -> Any:
        if self.kw("NOT"):
            self.next()
            return Not(self.unary())
        if self.tok.kind == "LPAREN":
            self.next()
            inner = self.condition()
            self.expect("RPAREN")
            return inner
        return self.simple()

    def simple(self) -> Any:
        f = self.ident()
        ref = FieldRef(f.value, f.pos)
        t = self.tok
        if t.kind == "OP":
            self.next()
            op = "!=" if t.value == "<>" else t.value
            return Compare(ref, op, self.literal())
        negate = False
        if self.kw("NOT"):
            self.next()
            negate = True
            if not self.kw("IN"):
                raise self.unexpected()
        if self.kw("IN"):
            self.next()
            self.expect("LPAREN")
            if self.kw("SELECT"):
                sub = self.query(nested=True)
                self.expect("RPAREN")
                return InList(ref, sub, negate)
            values = [self.literal()]
            while self.tok.kind == "COMMA":
                self.next()
                values.append(self.literal())
            self.expect("RPAREN")
            return InList(ref, tuple(values), negate)
        if self.kw("LIKE"):
            self.next()
            lit = self.literal()
            if lit.kind != "string":
                raise self.unexpected(self.tokens[self.i - 1])
            return Like(ref, lit)
        if self.kw("INCLUDES", "EXCLUDES"):
            neg = self.next().value.upper() == "EXCLUDES"
            self.expect("LPAREN")
            values = [self.literal()]
            while self.tok.kind == "COMMA":
                self.next()
                values.append(self.literal())
            self.expect("RPAREN")
            return Includes(ref, tuple(values), neg)
        raise self.unexpected()

    def literal(self) -> Literal:
        t = self.tok
        if t.kind == "STRING":
            self.next()
            return Literal("string", t.value, t.pos, t.raw)
        if t.kind == "NUMBER":
            self.next()
            v = float(t.value) if any(c in t.value for c in ".eE") else int(t.value)
            return Literal("number", v, t.pos, t.value)
        if t.kind == "DATETIME":
            self.next()
            return Literal("datetime", parse_datetime_literal(t.value), t.pos, t.value)
        if t.kind == "DATE":
            self.next()
            try:
                date.fromisoformat(t.value)
            except ValueError:
                raise SoqlError("MALFORMED_QUERY", _located(self.text, t.pos, f"line 1:{t.pos} no viable alternative "
                                                            f"at character '{t.value}'")) from None
            return Literal("date", t.value, t.pos, t.value)
        if t.kind == "IDENT":
            up = t.value.upper()
            if up == "NULL":
                self.next()
                return Literal("null", None, t.pos, t.value)
            if up in {"TRUE", "FALSE"}:
                self.next()
                return Literal("boolean", up == "TRUE", t.pos, t.value)
            if up in DATE_CONSTANTS:
                self.next()
                return Literal("constant", (up, None), t.pos, t.value)
            if up in DATE_N_CONSTANTS:
                self.next()
                self.expect("COLON")
                n = self.integer()
                return Literal("constant", (up, n), t.pos, f"{t.value}:{n}")
        raise self.unexpected()


def parse(text: str) -> Query:
    """Parse a SOQL statement (no schema needed); raise :class:`SoqlError` when malformed."""
    if not text or not text.strip():
        raise SoqlError("MALFORMED_QUERY", "A query string has to be specified")
    return _Parser(text).query()


def parse_datetime_literal(value: str) -> str:
    """A SOQL datetime literal as the stored form ``YYYY-MM-DDTHH:MM:SS.000+0000`` (UTC)."""
    v = value.replace("Z", "+00:00")
    m = re.match(r"^(.*)([+-]\d{2}):?(\d{2})$", v)
    if m:
        v = f"{m.group(1)}{m.group(2)}:{m.group(3)}"
    dt = datetime.fromisoformat(v)
    return format_datetime(dt)


def format_datetime(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    dt = dt.astimezone(UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}+0000"


def parse_sf_datetime(value: str) -> datetime:
    """Parse a stored or wire datetime (``...000+0000``, ``Z``, ``+00:00``) to an aware datetime."""
    return datetime.fromisoformat(parse_datetime_literal(value.strip()).replace("+0000", "+00:00"))


# ----------------------------------------------------------------------------------------- compiling

@dataclass(frozen=True)
class FieldMeta:
    """What the evaluator needs of a field (the describe has more)."""

    name: str
    type: str
    reference_to: tuple[str, ...] = ()
    relationship_name: str | None = None
    custom: bool = False
    filterable: bool = True
    sortable: bool = True


class Catalog(Protocol):
    """Schema and records as the evaluator sees them."""

    def object_name(self, name: str) -> str | None: ...          # canonical object name or None
    def field(self, sobject: str, name: str) -> FieldMeta | None: ...   # case-insensitive
    def fields(self, sobject: str) -> Sequence[FieldMeta]: ...
    def relationship(self, sobject: str, name: str) -> FieldMeta | None: ...  # by relationshipName
    def lookup(self, record_id: str) -> tuple[str, Mapping[str, Any]] | None: ...
    def select_ids(self, query: Query, *, include_deleted: bool) -> list[str]: ...


STRING_TYPES = {"string", "textarea", "picklist", "multipicklist", "url", "email", "phone", "combobox",
                "encryptedstring", "id", "reference", "base64"}
NUMBER_TYPES = {"double", "currency", "percent", "int", "long"}
ID_TYPES = {"id", "reference"}
SOAP_TYPE = {"string": "string", "textarea": "string", "picklist": "string", "multipicklist": "string",
             "url": "string", "email": "string", "phone": "string", "combobox": "string", "id": "id",
             "reference": "id", "double": "double", "currency": "double", "percent": "double", "int": "int",
             "long": "long", "boolean": "boolean", "date": "date", "datetime": "dateTime", "base64": "base64Binary"}


@dataclass
class Column:
    """A resolved selected path: ``field`` on the queried object, or at the end of parent relationships."""

    field: FieldMeta                          # the field read at the end of the path
    chain: tuple[FieldMeta, ...] = ()         # the reference fields followed (Account.Owner.Email: AccountId, OwnerId)
    path: str = ""                            # canonical: "Name", "Owner.Email", "Account.Owner.Email"
    sobject_type: bool = False                # What.Type on a polymorphic relationship: the referenced object's name

    @property
    def via(self) -> FieldMeta | None:
        """The first reference field followed, if any."""
        return self.chain[0] if self.chain else None


@dataclass
class CompiledQuery:
    query: Query
    sobject: str
    columns: list[Column] = field(default_factory=list)
    count_only: bool = False                              # SELECT COUNT()
    aggregates: list[tuple[str, Column | None]] = field(default_factory=list)   # (key, column)
    predicate: Callable[[Mapping[str, Any]], bool] = lambda r: True
    order: list[tuple[Column, bool, bool]] = field(default_factory=list)

    def sort(self, rows: list[Mapping[str, Any]], catalog: Catalog) -> list[Mapping[str, Any]]:
        """Order ``rows`` by the ORDER BY keys (stable, nulls placed as asked, text case-insensitive)."""
        for col, desc, nulls_first in reversed(self.order):
            keyed = [(read_column(r, col, catalog), r) for r in rows]
            nulls = [r for v, r in keyed if v is None]
            vals = [(v, r) for v, r in keyed if v is not None]
            conv = _sort_key(col.field.type)
            vals.sort(key=lambda vr: conv(vr[0]), reverse=desc)
            rest = [r for _, r in vals]
            rows = nulls + rest if nulls_first else rest + nulls
        return rows


def _sort_key(ftype: str) -> Callable[[Any], Any]:
    if ftype in STRING_TYPES - ID_TYPES:
        return lambda v: str(v).casefold()
    if ftype == "boolean":
        return lambda v: bool(v)
    return lambda v: v


def read_column(record: Mapping[str, Any], col: Column, catalog: Catalog) -> Any:
    rec, obj = record, ""
    for ref_field in col.chain:
        ref = rec.get(ref_field.name)
        if ref is None:
            return None
        found = catalog.lookup(ref)
        if found is None:
            return None
        obj, rec = found
    if col.sobject_type:
        return obj
    return rec.get(col.field.name)


def _invalid_field(q: Query, pos: int, name: str, sobject: str) -> SoqlError:
    if "." in name:
        rel = name.split(".")[0]
        msg = (f"Didn't understand relationship '{rel}' in field path. If you are attempting to use a "
               "custom relationship, be sure to append the '__r' after the custom relationship name. "
               "Please reference your WSDL or the describe call for the appropriate names.")
    else:
        msg = (f"No such column '{name}' on entity '{sobject}'. If you are attempting to use a custom "
               "field, be sure to append the '__c' after the custom field name. Please reference your "
               "WSDL or the describe call for the appropriate names.")
    return SoqlError("INVALID_FIELD", _located(q.text, pos, msg))


MAX_RELATIONSHIP_DEPTH = 5


def resolve_path(q: Query, catalog: Catalog, sobject: str, path: str, pos: int) -> Column:
    """Resolve ``Field`` or ``Rel.Rel.Field`` (parent relationships, up to five levels) from ``sobject``."""
    parts = path.split(".")
    if len(parts) > 1 and parts[0].casefold() == sobject.casefold():     # Account.Name on Account
        parts = parts[1:]
        pos += len(sobject) + 1
    if len(parts) - 1 > MAX_RELATIONSHIP_DEPTH:
        raise SoqlError("MALFORMED_QUERY", _located(q.text, pos, (
            "SOQL statements cannot query relationships that are more than 5 levels away from the root entity "
            "object.")))
    objects: tuple[str, ...] = (sobject,)
    chain: list[FieldMeta] = []
    offset = pos
    for i, part in enumerate(parts[:-1]):
        rel = next((r for o in objects if (r := catalog.relationship(o, part)) is not None), None)
        if rel is None:
            raise _invalid_field(q, offset, ".".join(parts[i:]), objects[0])
        chain.append(rel)
        objects = rel.reference_to or objects
        offset += len(part) + 1
    last = parts[-1]
    if not chain:
        f = catalog.field(sobject, last)
        if f is None:
            raise _invalid_field(q, pos, last, sobject)
        return Column(f, (), f.name)
    rels = ".".join(r.relationship_name or r.name for r in chain)
    if len(objects) > 1 and last.lower() == "type":     # polymorphic: the "Name" object's Type
        return Column(FieldMeta("Type", "string"), tuple(chain), f"{rels}.Type", sobject_type=True)
    target = next((f for o in objects if (f := catalog.field(o, last)) is not None), None)
    if target is None:
        raise _invalid_field(q, offset, last, objects[0])
    return Column(target, tuple(chain), f"{rels}.{target.name}")


def compile_query(q: Query, catalog: Catalog, *, now: datetime | None = None) -> CompiledQuery:
    """Check ``q`` against the schema and build its filter and ordering."""
    sobject = catalog.object_name(q.sobject)
    if sobject is None:
        raise SoqlError("INVALID_TYPE", _located(q.text, q.sobject_pos, (
            f"sObject type '{q.sobject}' is not supported. If you are attempting to use a custom object, be sure "
            "to append the '__c' after the entity name. Please reference your WSDL or the describe call for the "
            "appropriate names.")))
    now = now or datetime.now(UTC)
    cq = CompiledQuery(q, sobject)
    counts = [s for s in q.select if isinstance(s, SelectCount)]
    if counts:
        if any(not isinstance(s, SelectCount) for s in q.select):
            raise SoqlError("MALFORMED_QUERY", _located(q.text, q.select[0].pos, (
                "Field must be grouped or aggregated: " + next(
                    s.path for s in q.select if isinstance(s, SelectField)))))
        if any(s.path is None for s in counts):
            if len(counts) > 1:
                raise SoqlError("MALFORMED_QUERY", _located(q.text, counts[1].pos, "unexpected token: ','"))
            cq.count_only = True
        else:
            for n, s in enumerate(counts):
                cq.aggregates.append((s.alias or f"expr{n}", resolve_path(q, catalog, sobject, s.path, s.pos)))
    else:
        seen: set[str] = set()
        for s in q.select:
            if isinstance(s, SelectFields):
                if s.which in {"ALL", "CUSTOM"} and (q.limit is None or q.limit > 200):
                    raise SoqlError("MALFORMED_QUERY", _located(q.text, s.pos, (
                        "The SOQL FIELDS function must have a LIMIT of at most 200")))
                for f in catalog.fields(sobject):
                    if (s.which == "ALL" or (s.which == "CUSTOM") == f.custom) and f.name not in seen:
                        seen.add(f.name)
                        cq.columns.append(Column(f, (), f.name))
                continue
            col = resolve_path(q, catalog, sobject, s.path, s.pos)
            if col.path.casefold() in seen:
                raise SoqlError("MALFORMED_QUERY", _located(q.text, s.pos, f"duplicate field selected: {col.path}"))
            seen.add(col.path.casefold())
            cq.columns.append(col)
    if q.where is not None:
        cq.predicate = _compile_cond(q, catalog, sobject, q.where, now)
    for item in q.order:
        col = resolve_path(q, catalog, sobject, item.field.path, item.field.pos)
        if not col.field.sortable:
            raise SoqlError("INVALID_FIELD", _located(q.text, item.field.pos, (
                f"field '{col.path}' can not be sorted in a query call")))
        cq.order.append((col, item.desc, item.nulls_first))
    if q.offset is not None and q.offset > 2000:
        raise SoqlError("NUMBER_OUTSIDE_VALID_RANGE", "Maximum SOQL offset allowed is 2000")
    return cq


def _type_error(q: Query, lit: Literal, col: Column, expected: str, quoted: bool) -> SoqlError:
    how = "should be enclosed in quotes" if quoted else "should not be enclosed in quotes"
    return SoqlError("INVALID_FIELD", _located(q.text, lit.pos, (
        f"value of filter criterion for field '{col.path}' must be of type {expected} and {how}")))


def _coerce(q: Query, col: Column, lit: Literal, now: datetime) -> Any:
    """A literal as a comparable value for ``col``; date constants become (lo, hi) ranges."""
    ftype = col.field.type
    if lit.kind == "null":
        return None
    if ftype in STRING_TYPES:
        if lit.kind != "string":
            raise _type_error(q, lit, col, "string", True)
        if ftype in ID_TYPES:
            if lit.value and not is_id(lit.value):
                raise SoqlError("INVALID_QUERY_FILTER_OPERATOR", _located(q.text, lit.pos, f"invalid ID field: {lit.value}"))
            return to18(lit.value)
        return lit.value.casefold()
    if ftype in NUMBER_TYPES:
        if lit.kind != "number":
            raise _type_error(q, lit, col, SOAP_TYPE[ftype], False)
        return lit.value
    if ftype == "boolean":
        if lit.kind != "boolean":
            raise _type_error(q, lit, col, "boolean", False)
        return lit.value
    if ftype == "datetime":
        if lit.kind == "datetime":
            return lit.value
        if lit.kind == "constant":
            lo, hi = date_range(lit.value, now)
            return (_dt_str(lo), _dt_str(hi))
        raise _type_error(q, lit, col, "dateTime", False)
    if ftype == "date":
        if lit.kind == "date":
            return lit.value
        if lit.kind == "constant":
            lo, hi = date_range(lit.value, now)
            return (lo.isoformat(), hi.isoformat())
        raise _type_error(q, lit, col, "date", False)
    raise SoqlError("INVALID_FIELD", _located(q.text, lit.pos, f"field '{col.path}' can not be filtered in a query call"))


def _dt_str(d: date) -> str:
    return f"{d.isoformat()}T00:00:00.000+0000"


def _add_months(d: date, months: int) -> date:
    y, m = divmod(d.month - 1 + months, 12)
    return date(d.year + y, m + 1, min(d.day, calendar.monthrange(d.year + y, m + 1)[1]))


def date_range(constant: tuple[str, int | None], now: datetime) -> tuple[date, date]:
    """The half-open day range ``[lo, hi)`` a date constant stands for (UTC)."""
    name, n = constant
    today = now.astimezone(UTC).date()
    week0 = today - timedelta(days=(today.weekday() + 1) % 7)   # weeks start on Sunday
    month0 = today.replace(day=1)
    year0 = today.replace(month=1, day=1)
    day = timedelta(days=1)
    n = n or 0
    table: dict[str, tuple[date, date]] = {
        "YESTERDAY": (today - day, today),
        "TODAY": (today, today + day),
        "TOMORROW": (today + day, today + 2 * day),
        "LAST_WEEK": (week0 - 7 * day, week0),
        "THIS_WEEK": (week0, week0 + 7 * day),
        "NEXT_WEEK": (week0 + 7 * day, week0 + 14 * day),
        "LAST_MONTH": (_add_months(month0, -1), month0),
        "THIS_MONTH": (month0, _add_months(month0, 1)),
        "NEXT_MONTH": (_add_months(month0, 1), _add_months(month0, 2)),
        "LAST_90_DAYS": (today - 90 * day, today + day),
        "NEXT_90_DAYS": (today + day, today + 91 * day),
        "THIS_YEAR": (year0, year0.replace(year=year0.year + 1)),
        "LAST_YEAR": (year0.replace(year=year0.year - 1), year0),
        "NEXT_YEAR": (year0.replace(year=year0.year + 1), year0.replace(year=year0.year + 2)),
        "LAST_N_DAYS": (today - n * day, today + day),
        "NEXT_N_DAYS": (today + day, today + (n + 1) * day),
        "N_DAYS_AGO": (today - n * day, today - (n - 1) * day),
        "LAST_N_WEEKS": (week0 - 7 * n * day, week0),
        "NEXT_N_WEEKS": (week0 + 7 * day, week0 + 7 * (n + 1) * day),
        "LAST_N_MONTHS": (_add_months(month0, -n), month0),
        "NEXT_N_MONTHS": (_add_months(month0, 1), _add_months(month0, n + 1)),
        "LAST_N_YEARS": (year0.replace(year=year0.year - n), year0),
        "NEXT_N_YEARS": (year0.replace(year=year0.year + 1), year0.replace(year=year0.year + n + 1)),
    }
    return table[name]


def _normalize(ftype: str, value: Any) -> Any:
    if value is None:
        return None
    if ftype in STRING_TYPES - ID_TYPES:
        return str(value).casefold()
    return value


def _like_regex(raw: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            out.append(re.escape(_ESCAPES.get(nxt, nxt)))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _compile_cond(q: Query, catalog: Catalog, sobject: str, node: Any, now: datetime) -> Callable[[Mapping[str, Any]], bool]:
    if isinstance(node, BoolOp):
        parts = [_compile_cond(q, catalog, sobject, n, now) for n in node.items]
        if node.op == "AND":
            return lambda r: all(p(r) for p in parts)
        return lambda r: any(p(r) for p in parts)
    if isinstance(node, Not):
        inner = _compile_cond(q, catalog, sobject, node.item, now)
        return lambda r: not inner(r)
    col = resolve_path(q, catalog, sobject, node.field.path, node.field.pos)
    ftype = col.field.type
    if not col.field.filterable:
        raise SoqlError("INVALID_FIELD", _located(q.text, node.field.pos, (
            f"field '{col.path}' can not be filtered in a query call")))

    def get(r: Mapping[str, Any]) -> Any:
        return _normalize(ftype, read_column(r, col, catalog))

    if isinstance(node, Compare):
        return _compile_compare(q, col, node, get, now)
    if isinstance(node, InList):
        if isinstance(node.values, Query):
            sub = node.values
            if len(sub.select) != 1 or not isinstance(sub.select[0], SelectField):
                raise SoqlError("MALFORMED_QUERY", _located(q.text, node.field.pos,
                                                            "semi join sub-selects must select exactly one field"))
            if ftype not in ID_TYPES:
                raise SoqlError("INVALID_FIELD", _located(q.text, node.field.pos,
                                                          "semi join sub-selects are only allowed on Id or reference fields"))
            cache: dict[str, frozenset[str]] = {}

            def ids() -> frozenset[str]:
                if "v" not in cache:
                    cache["v"] = frozenset(catalog.select_ids(sub, include_deleted=False))
                return cache["v"]
            if node.negate:
                return lambda r: (v := get(r)) is not None and v not in ids()
            return lambda r: get(r) in ids()
        values = [_coerce(q, col, lit, now) for lit in node.values]
        if any(isinstance(v, tuple) for v in values):
            raise SoqlError("MALFORMED_QUERY", _located(q.text, node.field.pos, "date constants are not allowed in IN"))
        vset = frozenset(v for v in values if v is not None)
        has_null = any(v is None for v in values)
        if node.negate:
            return lambda r: (v := get(r)) not in vset and not (v is None and has_null)
        return lambda r: (v := get(r)) in vset or (v is None and has_null)
    if isinstance(node, Like):
        if ftype not in STRING_TYPES:
            raise SoqlError("INVALID_FIELD", _located(q.text, node.field.pos, (
                f"invalid operator on {SOAP_TYPE.get(ftype, ftype)} field: {col.path}")))
        rx = _like_regex(node.pattern.raw)
        return lambda r: (v := read_column(r, col, catalog)) is not None and rx.fullmatch(str(v)) is not None
    if isinstance(node, Includes):
        if ftype != "multipicklist":
            raise SoqlError("INVALID_FIELD", _located(q.text, node.field.pos,
                                                      f"includes or excludes operator only valid on multipicklist field: {col.path}"))
        terms = [frozenset(x.strip().casefold() for x in lit.value.split(";")) for lit in node.values]

        def has_any(r: Mapping[str, Any]) -> bool:
            v = read_column(r, col, catalog)
            have = frozenset(x.strip().casefold() for x in (v or "").split(";") if x.strip())
            return any(t <= have for t in terms)
        if node.negate:
            return lambda r: not has_any(r)
        return has_any
    raise SoqlError("MALFORMED_QUERY", "unsupported condition")


def _compile_compare(q: Query, col: Column, node: Compare, get: Callable[[Mapping[str, Any]], Any],
                     now: datetime) -> Callable[[Mapping[str, Any]], bool]:
    op = node.op
    value = _coerce(q, col, node.value, now)
    ftype = col.field.type
    if ftype == "multipicklist" and value is not None and op in {"=", "!="}:
        want = frozenset(x.strip() for x in value.split(";"))

        def same(r: Mapping[str, Any]) -> bool:
            v = get(r)
            return v is not None and frozenset(x.strip() for x in v.split(";")) == want
        return same if op == "=" else (lambda r: not same(r))
    if value is None:
        if op == "=":
            return lambda r: get(r) is None
        if op == "!=":
            return lambda r: get(r) is not None
        return lambda r: False
    if ftype == "boolean" and op not in {"=", "!="}:
        raise SoqlError("INVALID_FIELD", _located(q.text, node.field.pos, f"invalid operator on boolean field: {col.path}"))
    if isinstance(value, tuple):          # date constant range [lo, hi)
        lo, hi = value
        tests: dict[str, Callable[[Any], bool]] = {
            "=": lambda v: lo <= v < hi, "!=": lambda v: not (lo <= v < hi), "<": lambda v: v < lo,
            "<=": lambda v: v < hi, ">": lambda v: v >= hi, ">=": lambda v: v >= lo}
        t = tests[op]
        if op == "!=":
            return lambda r: (v := get(r)) is None or t(v)
        return lambda r: (v := get(r)) is not None and t(v)
    if op == "=":
        return lambda r: get(r) == value
    if op == "!=":
        return lambda r: get(r) != value
    cmp: dict[str, Callable[[Any], bool]] = {
        "<": lambda v: v < value, "<=": lambda v: v <= value, ">": lambda v: v > value, ">=": lambda v: v >= value}
    t = cmp[op]
    return lambda r: (v := get(r)) is not None and t(v)


def iter_literals(node: Any) -> Iterable[Any]:
    """Yield the leaf conditions of a WHERE tree (used for the ContentDocumentLink restriction)."""
    if isinstance(node, BoolOp):
        for n in node.items:
            yield from iter_literals(n)
    elif isinstance(node, Not):
        yield from iter_literals(node.item)
    elif node is not None:
        yield node


def top_level_conditions(node: Any) -> list[Any]:
    """The conditions every matching row satisfies: the node, or the items of a top-level AND."""
    if node is None:
        return []
    if isinstance(node, BoolOp) and node.op == "AND":
        out: list[Any] = []
        for n in node.items:
            out.extend(top_level_conditions(n))
        return out
    return [node]
