"""The Apto sandbox's SOQL engine: parsing, literals and escapes, filters, ordering, errors."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from crm_sandbox.apto import soql
from crm_sandbox.apto.ids import make_id, to18
from crm_sandbox.apto.schema import FieldDef, ObjectDef

P1, P2 = make_id("005", 101), make_id("005", 202)
THING = ObjectDef("Thing__c", "a01", "Thing", "Things", [
    FieldDef("Id", "id"), FieldDef("Name", "string"), FieldDef("Amount", "currency"),
    FieldDef("Active", "boolean"), FieldDef("Closed", "date"), FieldDef("Stamp", "datetime"),
    FieldDef("Tags", "multipicklist", picklist=("A", "B", "C")), FieldDef("Note", "textarea"),
    FieldDef("Body", "textarea", length=32000),
    FieldDef("OwnerId", "reference", reference_to=("Person",), relationship_name="Owner"),
    FieldDef("IsDeleted", "boolean")])
PERSON = ObjectDef("Person", "005", "Person", "People", [
    FieldDef("Id", "id"), FieldDef("Email", "email"), FieldDef("Name", "string"),
    FieldDef("ManagerId", "reference", reference_to=("Person",), relationship_name="Manager")])
ROWS = [
    {"Id": make_id("a01", 1), "Name": "Alpha", "Amount": 10.0, "Active": True, "Closed": "2024-01-01",
     "Stamp": "2024-01-01T00:00:00.000+0000", "Tags": "A;B", "Note": "it's", "OwnerId": P1},
    {"Id": make_id("a01", 2), "Name": "beta", "Amount": 20.5, "Active": False, "Closed": "2024-02-15",
     "Stamp": "2024-02-15T12:30:00.000+0000", "Tags": "B", "Note": "back\\slash", "OwnerId": P2},
    {"Id": make_id("a01", 3), "Name": "Gamma_1", "Amount": None, "Active": True, "Closed": None,
     "Stamp": "2024-03-01T08:00:00.000+0000", "Tags": None, "Note": "line\nbreak", "OwnerId": None},
    {"Id": make_id("a01", 4), "Name": "100% Delta", "Amount": -5, "Active": False, "Closed": "2023-12-31",
     "Stamp": "2023-12-31T23:59:59.000+0000", "Tags": "C;A", "Note": 'say "hi"', "OwnerId": P1},
]
PEOPLE = {P1: {"Id": P1, "Email": "Ann@X.com", "Name": "Ann", "ManagerId": P2},
          P2: {"Id": P2, "Email": "bob@y.com", "Name": "Bob", "ManagerId": None}}
NOW = datetime(2024, 2, 20, 15, 0, tzinfo=UTC)


class FakeCatalog:
    objects = {"Thing__c": THING, "Person": PERSON}

    def object_name(self, name: str) -> str | None:
        return next((n for n in self.objects if n.lower() == name.lower()), None)

    def field(self, sobject: str, name: str) -> soql.FieldMeta | None:
        f = self.objects[sobject].field(name)
        return f.meta() if f else None

    def fields(self, sobject: str) -> Sequence[soql.FieldMeta]:
        return [f.meta() for f in self.objects[sobject].fields]

    def relationship(self, sobject: str, name: str) -> soql.FieldMeta | None:
        f = self.objects[sobject].relationship(name)
        return f.meta() if f else None

    def lookup(self, record_id: str) -> tuple[str, Mapping[str, Any]] | None:
        rec = PEOPLE.get(record_id)
        return ("Person", rec) if rec else None

    def select_ids(self, query: soql.Query, *, include_deleted: bool) -> list[str]:
        cq = soql.compile_query(query, self, now=NOW)
        rows = PEOPLE.values() if cq.sobject == "Person" else ROWS
        return [r["Id"] for r in rows if cq.predicate(r)]


CAT = FakeCatalog()


def run(text: str) -> list[str]:
    cq = soql.compile_query(soql.parse(text), CAT, now=NOW)
    rows = [r for r in ROWS if cq.predicate(r)]
    rows = cq.sort(rows, CAT) if cq.order else rows
    q = cq.query
    rows = rows[q.offset or 0:]
    rows = rows[:q.limit] if q.limit is not None else rows
    return [r["Name"] for r in rows]


@pytest.mark.parametrize(("where", "expected"), [
    ("Name = 'alpha'", {"Alpha"}),                          # text equality is case-insensitive
    ("Name != 'Alpha'", {"beta", "Gamma_1", "100% Delta"}),
    ("Name <> 'Alpha'", {"beta", "Gamma_1", "100% Delta"}),
    (r"Note = 'it\'s'", {"Alpha"}),                         # escaped quote
    (r"Note = 'back\\slash'", {"beta"}),                    # escaped backslash
    (r"Note = 'line\nbreak'", {"Gamma_1"}),                 # \n escape
    (r"Note = 'say \"hi\"'", {"100% Delta"}),               # escaped double quotes
    ("Note = 'say \"hi\"'", {"100% Delta"}),                # double quotes need no escape
    ("Amount > 10", {"beta"}),
    ("Amount >= 10", {"Alpha", "beta"}),
    ("Amount < 0", {"100% Delta"}),
    ("Amount = -5", {"100% Delta"}),
    ("Amount = 20.5", {"beta"}),
    ("Amount = null", {"Gamma_1"}),
    ("Amount != null", {"Alpha", "beta", "100% Delta"}),
    ("Amount < 100", {"Alpha", "beta", "100% Delta"}),       # null never compares
    ("Active = true", {"Alpha", "Gamma_1"}),
    ("Active = FALSE", {"beta", "100% Delta"}),
    ("Closed >= 2024-01-01", {"Alpha", "beta"}),
    ("Closed < 2024-01-01", {"100% Delta"}),
    ("Stamp >= 2024-01-01T00:00:00Z AND Stamp < 2024-03-01T08:00:00Z", {"Alpha", "beta"}),   # half-open
    ("Stamp > 2024-01-01T01:00:00+01:00", {"beta", "Gamma_1"}),                               # offsets
    ("Stamp = 2024-02-15T12:30:00.000+0000", {"beta"}),
    ("Stamp < 2024-01-01T00:00:00.000-0000", {"100% Delta"}),
    ("Stamp = 2024-02-15T07:30:00-05:00", {"beta"}),
    ("Name IN ('ALPHA', 'beta')", {"Alpha", "beta"}),
    ("Name NOT IN ('alpha', 'BETA')", {"Gamma_1", "100% Delta"}),
    ("Amount IN (10, 20.5)", {"Alpha", "beta"}),
    ("Amount NOT IN (10)", {"beta", "Gamma_1", "100% Delta"}),     # like !=, nulls match
    ("Name LIKE 'g%'", {"Gamma_1"}),
    ("Name LIKE '%a'", {"Alpha", "beta", "100% Delta"}),
    ("Name LIKE '_eta'", {"beta"}),
    (r"Name LIKE 'Gamma\_1'", {"Gamma_1"}),
    (r"Name LIKE '100\%%'", {"100% Delta"}),
    ("Name LIKE 'Gamm_'", set()),
    ("(Name = 'Alpha' OR Name = 'beta') AND Active = true", {"Alpha"}),          # parentheses decide
    ("Name = 'Alpha' OR (Name = 'beta' AND Active = true)", {"Alpha"}),
    ("Name = 'Alpha' OR Name = 'beta' OR Name = 'nope'", {"Alpha", "beta"}),
    ("Active = false AND Amount > 0 AND Name LIKE 'b%'", {"beta"}),
    ("NOT Name = 'Alpha'", {"beta", "Gamma_1", "100% Delta"}),
    ("NOT (Active = true OR Amount > 15)", {"100% Delta"}),
    ("Owner.Email = 'ann@x.com'", {"Alpha", "100% Delta"}),                     # relationship path
    ("Owner.Name LIKE 'B%'", {"beta"}),
    ("Owner.Manager.Name = 'Bob'", {"Alpha", "100% Delta"}),                    # two levels up
    ("Owner.Manager.Manager.Email = null", {"Alpha", "beta", "Gamma_1", "100% Delta"}),
    ("Thing__c.Name = 'Alpha'", {"Alpha"}),                                      # the object's own name as prefix
    ("OwnerId = null", {"Gamma_1"}),
    (f"OwnerId = '{P1[:15]}'", {"Alpha", "100% Delta"}),                         # 15-char ids match
    (f"OwnerId IN ('{P2}')", {"beta"}),
    ("OwnerId IN (SELECT Id FROM Person WHERE Email LIKE 'bob%')", {"beta"}),    # semi-join
    ("Tags INCLUDES ('A')", {"Alpha", "100% Delta"}),
    ("Tags INCLUDES ('A;B')", {"Alpha"}),
    ("Tags INCLUDES ('C', 'B')", {"Alpha", "beta", "100% Delta"}),
    ("Tags EXCLUDES ('A')", {"beta", "Gamma_1"}),
    ("Tags = 'B;A'", {"Alpha"}),
    ("Closed = LAST_N_DAYS:30", {"beta"}),            # NOW = 2024-02-20
    ("Closed < LAST_N_DAYS:30", {"Alpha", "100% Delta"}),
    ("Stamp = THIS_MONTH", {"beta"}),
    ("Stamp < YESTERDAY", {"Alpha", "beta", "100% Delta"}),
    ("Stamp > TODAY", {"Gamma_1"}),
    ("Closed = LAST_YEAR", {"100% Delta"}),
])
def test_where(where: str, expected: set[str]) -> None:
    assert set(run(f"SELECT Id FROM Thing__c WHERE {where}")) == expected


@pytest.mark.parametrize(("tail", "expected"), [
    ("ORDER BY Amount", ["Gamma_1", "100% Delta", "Alpha", "beta"]),              # ASC: nulls first
    ("ORDER BY Amount DESC", ["beta", "Alpha", "100% Delta", "Gamma_1"]),         # DESC: nulls last
    ("ORDER BY Amount ASC NULLS LAST", ["100% Delta", "Alpha", "beta", "Gamma_1"]),
    ("ORDER BY Amount DESC NULLS FIRST", ["Gamma_1", "beta", "Alpha", "100% Delta"]),
    ("ORDER BY Name", ["100% Delta", "Alpha", "beta", "Gamma_1"]),                # case-insensitive
    ("ORDER BY Active DESC, Name ASC", ["Alpha", "Gamma_1", "100% Delta", "beta"]),
    ("ORDER BY Owner.Email, Name DESC", ["Gamma_1", "Alpha", "100% Delta", "beta"]),
    ("ORDER BY Stamp LIMIT 2", ["100% Delta", "Alpha"]),
    ("ORDER BY Name LIMIT 2 OFFSET 1", ["Alpha", "beta"]),
    ("ORDER BY Name OFFSET 3", ["Gamma_1"]),
    ("LIMIT 0", []),
])
def test_order_limit_offset(tail: str, expected: list[str]) -> None:
    assert run(f"SELECT Name FROM Thing__c {tail}") == expected


@pytest.mark.parametrize(("text", "code", "fragment"), [
    ("SELECT Id FROM Thing__c WHERE", "MALFORMED_QUERY", "unexpected token: <EOF>"),
    ("SELECT Id FROM Thing__c WHERE Name = 'a' AND Name = 'b' OR Name = 'c'", "MALFORMED_QUERY", "unexpected token: OR"),
    ("SELECT Id FROM Thing__c WHERE Name = 'a' OR Name = 'b' AND Name = 'c'", "MALFORMED_QUERY", "unexpected token: AND"),
    ("SELECT Id Name FROM Thing__c", "MALFORMED_QUERY", "unexpected token"),
    ("SELECT Nope FROM Thing__c", "INVALID_FIELD", "No such column 'Nope' on entity 'Thing__c'"),
    ("SELECT Id FROM Thing__c WHERE Nope = 1", "INVALID_FIELD", "No such column 'Nope'"),
    ("SELECT Id FROM Nope", "INVALID_TYPE", "sObject type 'Nope' is not supported"),
    ("SELECT Bogus.Name FROM Thing__c", "INVALID_FIELD", "Didn't understand relationship 'Bogus'"),
    ("SELECT Owner.Nope FROM Thing__c", "INVALID_FIELD", "No such column 'Nope' on entity 'Person'"),
    ("SELECT Owner.Boss.Name FROM Thing__c", "INVALID_FIELD", "Didn't understand relationship 'Boss'"),
    ("SELECT Owner.Manager.Manager.Manager.Manager.Manager.Name FROM Thing__c", "MALFORMED_QUERY", "5 levels"),
    ("SELECT Id FROM Thing__c WHERE Amount = '10'", "INVALID_FIELD", "must be of type double"),
    ("SELECT Id FROM Thing__c WHERE Name = 10", "INVALID_FIELD", "must be of type string"),
    ("SELECT Id FROM Thing__c WHERE Stamp > 2024-01-01", "INVALID_FIELD", "must be of type dateTime"),
    ("SELECT Id FROM Thing__c WHERE Closed > 2024-01-01T00:00:00Z", "INVALID_FIELD", "must be of type date"),
    ("SELECT Id FROM Thing__c WHERE Active = 'true'", "INVALID_FIELD", "must be of type boolean"),
    (r"SELECT Id FROM Thing__c WHERE Name = 'bad \q'", "MALFORMED_QUERY", "Illegal escape sequence"),
    ("SELECT Id FROM Thing__c WHERE Name = 'open", "MALFORMED_QUERY", "unterminated"),
    ("SELECT Id FROM Thing__c WHERE Name ~ 'x'", "MALFORMED_QUERY", "no viable alternative"),
    ("SELECT Id, COUNT() FROM Thing__c", "MALFORMED_QUERY", "grouped or aggregated"),
    ("SELECT Id FROM Thing__c OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE", "2000"),
    ("SELECT FIELDS(ALL) FROM Thing__c", "MALFORMED_QUERY", "LIMIT of at most 200"),
    ("", "MALFORMED_QUERY", "query string"),
    ("SELECT Id FROM Thing__c WHERE Body = 'x'", "INVALID_FIELD", "field 'Body' can not be filtered in a query call"),
    ("SELECT Id FROM Thing__c ORDER BY Tags", "INVALID_FIELD", "field 'Tags' can not be sorted in a query call"),
    ("SELECT Id FROM Thing__c WHERE OwnerId = 'abc'", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field: abc"),
    ("SELECT Id FROM Thing__c WHERE OwnerId IN ('abc')", "INVALID_QUERY_FILTER_OPERATOR", "invalid ID field"),
])
def test_errors(text: str, code: str, fragment: str) -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.compile_query(soql.parse(text), CAT, now=NOW)
    assert err.value.error_code == code
    assert fragment in err.value.message


def test_error_message_points_at_the_column() -> None:
    with pytest.raises(soql.SoqlError) as err:
        soql.compile_query(soql.parse("SELECT Id, Foo FROM Thing__c"), CAT)
    lines = err.value.message.split("\n")
    assert lines[0] == "SELECT Id, Foo FROM Thing__c"
    assert lines[1] == " " * 11 + "^"
    assert lines[2] == "ERROR at Row:1:Column:12"


def test_parse_shapes() -> None:
    q = soql.parse("select Id, Owner.Email, COUNT(Id) total from Thing__c where Name = 'x' order by Name desc nulls last "
                   "limit 5 offset 2")
    assert q.sobject == "Thing__c" and q.limit == 5 and q.offset == 2
    assert q.order[0].desc and not q.order[0].nulls_first
    assert isinstance(q.select[2], soql.SelectCount) and q.select[2].alias == "total"


@pytest.mark.parametrize(("literal", "stored"), [
    ("2024-01-01T00:00:00Z", "2024-01-01T00:00:00.000+0000"),
    ("2024-01-01T01:00:00+01:00", "2024-01-01T00:00:00.000+0000"),
    ("2024-01-01T00:00:00.000+0000", "2024-01-01T00:00:00.000+0000"),
    ("2023-12-31T19:00:00-0500", "2024-01-01T00:00:00.000+0000"),
    ("2024-01-01T00:00:00.250Z", "2024-01-01T00:00:00.250+0000"),
])
def test_datetime_literals(literal: str, stored: str) -> None:
    assert soql.parse_datetime_literal(literal) == stored


def test_columns_resolve_canonical_names_and_fields_function() -> None:
    cq = soql.compile_query(soql.parse("SELECT name, owner.EMAIL FROM thing__C"), CAT)
    assert cq.sobject == "Thing__c"
    assert [c.path for c in cq.columns] == ["Name", "Owner.Email"]
    cq = soql.compile_query(soql.parse("SELECT owner.manager.name FROM Thing__c"), CAT)
    assert [c.path for c in cq.columns] == ["Owner.Manager.Name"]
    assert [soql.read_column(r, cq.columns[0], CAT) for r in ROWS] == ["Bob", None, None, "Bob"]
    cq = soql.compile_query(soql.parse("SELECT FIELDS(STANDARD) FROM Thing__c LIMIT 10"), CAT)
    assert "Id" in [c.path for c in cq.columns]


def test_count_forms() -> None:
    assert soql.compile_query(soql.parse("SELECT COUNT() FROM Thing__c"), CAT).count_only
    cq = soql.compile_query(soql.parse("SELECT COUNT(Amount), COUNT(Id) n FROM Thing__c"), CAT)
    assert [k for k, _ in cq.aggregates] == ["expr0", "n"]


def test_ids() -> None:
    rid = make_id("001", 12345)
    assert len(rid) == 18 and rid.startswith("001")
    assert to18(rid[:15]) == rid
    assert to18(rid) == rid
    # the suffix encodes upper-case positions: a known Salesforce pair
    assert to18("001D000000IqhSL") == "001D000000IqhSLIAZ"
