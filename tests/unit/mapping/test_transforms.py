"""The transforms: a table of inputs and the exact values Odoo stores, and their round trips."""

from __future__ import annotations

import base64
import hashlib

import pytest

from crm_migration.engine.values import canonical
from crm_migration.mapping import transforms as T
from crm_migration.mapping.transforms import TRANSFORMS, TransformError, apply


@pytest.mark.parametrize(("name", "values", "args", "expected"), [
    # names: Odoo needs one
    ("join_name", ["Jane", "Doe"], {}, "Jane Doe"),
    ("join_name", [None, "Doe"], {}, "Doe"),
    ("join_name", ["  ", None], {}, "(no name)"),
    ("join_name", ["", ""], {}, "(no name)"),
    ("join_name", [" Zoë ", "Østergaard"], {}, "Zoë Østergaard"),
    # emails
    ("normalize_email", ["  Jane.Broker@AptoDemo.COM "], {}, "jane.broker@aptodemo.com"),
    ("normalize_email", ["Jane Doe <JANE.DOE@Acme.Example>"], {}, "jane.doe@acme.example"),
    ("normalize_email", ["mailto:a@b.co"], {}, "a@b.co"),
    ("normalize_email", ["leasing+team@brokerage-partners.co.uk"], {}, "leasing+team@brokerage-partners.co.uk"),
    ("normalize_email", [None], {}, None),
    ("normalize_email", ["   "], {}, None),
    # phones: as written, whitespace collapsed
    ("phone", ["  +1 (212)   555-0100 "], {}, "+1 (212) 555-0100"),
    ("phone", [""], {}, None),
    # Salesforce datetimes -> naive UTC
    ("sf_datetime_to_odoo", ["2024-03-05T14:02:11.000+0000"], {}, "2024-03-05 14:02:11"),
    ("sf_datetime_to_odoo", ["2024-03-05T14:02:11Z"], {}, "2024-03-05 14:02:11"),
    ("sf_datetime_to_odoo", ["2024-03-05T14:02:11.999+0200"], {}, "2024-03-05 12:02:11"),
    ("sf_datetime_to_odoo", ["2024-03-05T23:30:00-05:00"], {}, "2024-03-06 04:30:00"),
    ("sf_datetime_to_odoo", ["2024-12-31T22:00:00.000-0130"], {}, "2024-12-31 23:30:00"),
    ("sf_datetime_to_odoo", ["2024-03-05 14:02:11"], {}, "2024-03-05 14:02:11"),   # already Odoo's: unchanged
    ("sf_datetime_to_odoo", [None], {}, None),
    # dates
    ("date", ["2024-02-29"], {}, "2024-02-29"),
    ("date", ["2024-03-05T23:30:00.000-0500"], {}, "2024-03-06"),
    ("date", [""], {}, None),
    ("date_to_datetime", ["2024-02-29"], {}, "2024-02-29 12:00:00"),
    ("date_to_datetime", ["2024-02-29"], {"time": "00:00:00"}, "2024-02-29 00:00:00"),
    # priority: '0'..'3', unknown -> default
    ("priority_to_odoo", ["Low"], {}, "0"),
    ("priority_to_odoo", ["Medium"], {}, "1"),
    ("priority_to_odoo", ["HIGH"], {}, "2"),
    ("priority_to_odoo", ["Critical"], {}, "3"),
    ("priority_to_odoo", ["Urgent!!"], {}, "3"),
    ("priority_to_odoo", ["Someday"], {}, "0"),
    ("priority_to_odoo", [None], {}, "0"),
    ("priority_to_odoo", ["P1"], {"mapping": {"P1": "3", "P2": "2"}, "default": "1"}, "3"),
    ("priority_to_odoo", ["P9"], {"mapping": {"P1": "3"}, "default": "1"}, "1"),
    # html: escaped, paragraphs, <br> as Odoo's sanitiser writes it
    ("html_text", ["a < b & \"c\""], {}, "<p>a &lt; b &amp; \"c\"</p>"),
    ("html_text", ["<script>alert(1)</script>"], {}, "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
    ("html_text", ["line 1\r\nline 2\n\nnew para"], {}, "<p>line 1<br>line 2</p><p>new para</p>"),
    ("html_text", ["Multi-line\nnote\n\twith tab"], {}, "<p>Multi-line<br>note<br>\twith tab</p>"),
    ("html_text", [None], {}, None),
    ("html_text", ["  "], {}, None),
    ("html_note", ["Call recap", "Client <happy>"], {}, "<p><b>Call recap</b></p><p>Client &lt;happy&gt;</p>"),
    ("html_note", ["T", "<p>x <b>y</b></p><script>z</script>"], {"body_is_html": True},
     "<p><b>T</b></p><p>x <b>y</b></p>"),
    ("html_clean", ['<p onclick="x()">Hi <a href="javascript:x">you</a></p><style>p{}</style>'], {},
     "<p>Hi <a>you</a></p>"),             # the link goes, its text stays
    ("html_clean", ["plain &amp; simple"], {}, "<p>plain &amp; simple</p>"),
    ("html_clean", [b"<p>caf\xc3\xa9</p>"], {}, "<p>café</p>"),
    # websites as Odoo 17 _clean_website stores them
    ("website", ["acme.example"], {}, "http://acme.example"),
    ("website", ["www.acme.example/path?q=1#top"], {}, "http://www.acme.example/path?q=1#top"),
    ("website", ["https://www.cycle-0.example.com"], {}, "https://www.cycle-0.example.com"),
    ("website", ["HTTP://Acme.Example"], {}, "HTTP://Acme.Example"),
    ("website", ["//acme.example/x"], {}, "http://acme.example/x"),
    ("website", ["localhost:8080"], {}, "http://localhost:8080"),
    ("website", ["mailto:x@y.z"], {}, "mailto:x@y.z"),
    ("website", ["  "], {}, None),
    # numbers and flags: empty is what Odoo reads back (0.0, 0, False)
    ("bool", [None], {}, False),
    ("bool", ["true"], {}, True),
    ("bool", ["FALSE"], {}, False),
    ("float", [None], {}, 0.0),
    ("float", ["1,234.50"], {}, 1234.5),
    ("float", [3.14159], {"digits": 2}, 3.14),
    ("int", [12.0], {}, 12),
    ("int", [None], {}, 0),
    ("truncate", ["abcdefgh"], {"length": 5}, "abcde"),
    ("truncate", ["abcdefgh"], {"length": 5, "ellipsis": "…"}, "abcd…"),
    ("truncate", ["abc"], {"length": 5}, "abc"),
    ("multipicklist", ["Private;REIT; Family Office"], {}, "Private;REIT;Family Office"),
    ("multipicklist", ["Private;REIT"], {"as_list": True}, ["Private", "REIT"]),
    ("multipicklist", ["Decision Maker;Influencer"], {"sep": ", "}, "Decision Maker, Influencer"),
    ("multipicklist", [";"], {}, None),
    ("probability", [40], {}, 40.0),
    ("probability", [None], {}, 0.0),
    ("deal_probability", [80.0, True, True], {}, 100.0),
    ("deal_probability", [80.0, True, False], {}, 0.0),
    ("deal_probability", [55.5, False, False], {}, 55.5),
    ("deal_active", [True, False], {}, False),
    ("deal_active", [True, True], {}, True),
    ("deal_active", [False, False], {}, True),
    ("if_lost", ["Price", True, False], {}, "Price"),
    ("if_lost", ["Price", False, False], {}, None),
    ("closed_lost", [True, False], {}, True),
    ("seconds_to_duration_hours", [5400], {}, 1.5),
    ("seconds_to_duration_hours", [None], {}, 0.0),
    ("minutes_to_hours", [90], {}, 1.5),
    ("selection", ["OutOfOffice"], {"mapping": {"Busy": "busy", "OutOfOffice": "busy", "Free": "free"}}, "busy"),
    ("selection", ["out of office"], {"mapping": {"OutOfOffice": "busy"}}, "busy"),
    ("selection", ["Tentative"], {"mapping": {"Busy": "busy"}, "default": "busy"}, "busy"),
    ("selection", [None], {"mapping": {"Busy": "busy"}}, None),
    ("first", [None, "", "x", "y"], {}, "x"),
    ("as_list", ["003x", None], {}, ["003x"]),
    ("street_line", ["12 Main St\nSuite 200\nFloor 3"], {}, "12 Main St"),
    ("street_line", ["12 Main St\nSuite 200\nFloor 3"], {"line": 2}, "Suite 200, Floor 3"),
    ("street_line", ["12 Main St"], {"line": 2}, None),
    # calendar
    ("event_start", ["2024-03-05T14:00:00.000+0000", False], {}, "2024-03-05 14:00:00"),
    ("event_start", ["2024-03-05T00:00:00.000+0000", True], {}, "2024-03-05 08:00:00"),
    ("event_stop", ["2024-03-06T00:00:00.000+0000", "2024-03-05T00:00:00.000+0000", True], {}, "2024-03-05 18:00:00"),
    ("event_stop", ["2024-03-05T15:30:00.000+0000", "2024-03-05T14:00:00.000+0000", False], {},
     "2024-03-05 15:30:00"),
    ("event_stop", [None, "2024-03-05T14:00:00.000+0000", False], {}, "2024-03-05 14:00:00"),
    # partners
    ("has_own_address", ["1 Main St", "Boston", None, "02110", "US", "1 Main St", "Boston", None, "02110", "US"], {},
     False),
    ("has_own_address", ["1 main st ", "BOSTON", None, None, None, "1 Main St", "Boston", None, None, None], {}, False),
    ("has_own_address", ["9 Elm", "Austin", None, None, None, "1 Main St", "Boston", None, None, None], {}, True),
    ("has_own_address", ["9 Elm", None, None, None, None, None, None, None, None, None], {}, True),
    ("has_own_address", [None] * 10, {}, False),
    ("sends_own_address", [None, None, None, None, None, None, "1 Main St", None, None, None, None], {}, True),
    ("sends_own_address", ["001x", "1 Main St", None, None, None, None, "1 Main St", None, None, None, None], {},
     False),
    ("sends_own_address", ["001x", "9 Elm", None, None, None, None, "1 Main St", None, None, None, None], {}, True),
    ("contact_partner_type", ["001x", True], {}, "other"),
    ("contact_partner_type", ["001x", False], {}, "contact"),
    ("contact_partner_type", [None, True], {}, "contact"),
    # deals
    ("stage_entered_at", [{"records": [{"StageName": "A", "CreatedDate": "2024-01-01T00:00:00.000+0000"},
                                       {"StageName": "B", "CreatedDate": "2024-02-01T10:00:00.000+0100"},
                                       {"StageName": "B", "CreatedDate": "2024-01-15T00:00:00.000+0000"}]},
                          "B", "2025-01-01T00:00:00.000+0000"], {}, "2024-02-01 09:00:00"),
    ("stage_entered_at", [[], "B", "2025-01-01T00:00:00.000+0000"], {}, "2025-01-01 00:00:00"),
    ("stage_entered_at", [None, "B", None], {}, None),
    ("html_stage_note", ["Under Contract", 80.0, 1500000.0], {},
     "<p>Stage: <b>Under Contract</b> (probability 80%, amount 1,500,000.00)</p>"),
    ("call_body", ["Call intro", "Discussed\ncap rates", 720, "Outbound", "Connected"], {},
     "<p><b>Call intro</b> (Outbound, 12 min, Connected)</p><p>Discussed<br>cap rates</p>"),
    # files
    ("mimetype", ["image/PNG", "x.pdf"], {}, "image/png"),
    ("mimetype", [None, "Rent Roll Q3.xlsx"], {}, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ("mimetype", ["pdf"], {}, "application/pdf"),
    ("mimetype", ["weird"], {}, "application/octet-stream"),
    ("attachment_name", ["Exposé Büro 東京", "pdf"], {}, "Exposé Büro 東京.pdf"),
    ("attachment_name", ["report.PDF", "pdf"], {}, "report.PDF"),
    ("attachment_name", [None, None], {}, "(unnamed)"),
    ("base64", [b"\x89PNG\r\n"], {}, base64.b64encode(b"\x89PNG\r\n").decode()),
    ("base64", [b""], {}, ""),
    ("sha1", [b"abc"], {}, hashlib.sha1(b"abc").hexdigest()),  # noqa: S324
])
def test_transform_table(name, values, args, expected):
    assert apply(name, values, args) == expected


@pytest.mark.parametrize(("name", "values", "args"), [
    ("sf_datetime_to_odoo", ["yesterday"], {}),
    ("sf_datetime_to_odoo", ["2024-13-45T00:00:00Z"], {}),
    ("date", ["2024-02-30"], {}),
    ("int", [12.5], {}),
    ("int", [2**40], {}),
    ("float", ["twelve"], {}),
    ("bool", ["maybe"], {}),
    ("probability", [140], {}),
    ("selection", ["Tentative"], {"mapping": {"Busy": "busy"}}),
    ("priority_to_odoo", ["x"], {"mapping": {"x": "7"}}),
    ("base64", ["not base64!"], {}),
])
def test_bad_data_is_a_transform_error(name, values, args):
    with pytest.raises(TransformError):
        apply(name, values, args)


@pytest.mark.parametrize("value", ["not an email", "a@b", "a@@b.com", "a b@c.com", "a@b..com", "x@y.com; z@w.com",
                                   " Broken@@Example.COM "])
def test_a_malformed_email_lands_as_written_and_flagged(value):
    got = T.normalize_email(value)
    assert isinstance(got, T.Flagged) and got.value == value.strip()
    assert repr(value.strip()) in got.reason


@pytest.mark.parametrize("value", ["acme.example", "www.x.com/a?b#c", "https://x", "//x.y/z", "localhost:8080",
                                   "ftp.example.com:21/files", "x"])
def test_website_is_a_fixed_point(value):
    """What we write is what Odoo stores: cleaning our output again changes nothing."""
    once = T.website(value)
    assert T.website(once) == once


@pytest.mark.parametrize("text", ["a < b & c", "Multi-line\nnote\n\twith tab", "Grüße – café \"quoted\" 'single'",
                                  "para 1\n\npara 2\nline"])
def test_html_is_a_fixed_point_of_sanitising(text):
    """Our html survives a sanitiser pass unchanged (the sandbox's, which follows Odoo's serialisation)."""
    values = pytest.importorskip("crm_sandbox.odoo.values")
    html = T.html_text(text)
    assert values.sanitize_html(html) == html
    assert T.html_clean(html) == html


@pytest.mark.parametrize(("name", "value", "ftype"), [
    ("float", None, "float"), ("int", None, "integer"), ("bool", None, "boolean"),
    ("sf_datetime_to_odoo", "2024-03-05T14:02:11.000+0000", "datetime"), ("date", "2024-03-05", "date"),
    ("text", "", "char"), ("priority_to_odoo", None, "selection"),
])
def test_empty_values_read_back_equal(name, value, ftype):
    """Odoo reads an empty float as 0.0, an empty char as False: what we send compares equal to it."""
    sent = apply(name, [value])
    read_back = {"float": 0.0, "integer": 0, "boolean": False, "char": False}.get(ftype, sent)
    assert canonical(sent, ftype) == canonical(read_back, ftype)


def test_registry_names_and_purity():
    assert {"join_name", "normalize_email", "phone", "sf_datetime_to_odoo", "date", "priority_to_odoo", "html_text",
            "website", "bool", "float", "int", "truncate", "multipicklist", "probability",
            "seconds_to_duration_hours", "selection"} <= set(TRANSFORMS)
    with pytest.raises(ValueError, match="registered twice"):
        T.transform(lambda v: v, name="join_name")


def test_check_args_names_the_signature():
    T.check_args("selection", 1, {"mapping": {}, "default": None})
    with pytest.raises(TypeError, match="selection"):
        T.check_args("selection", 1, {"mappings": {}})
    with pytest.raises(TypeError):
        T.check_args("website", 2, {})
