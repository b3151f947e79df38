"""Datetime / date validation, HTML sanitising and the other value rules (no network)."""

from __future__ import annotations

import pytest

from crm_sandbox.odoo.errors import PyError
from crm_sandbox.odoo.values import (
    clean_website,
    email_formatted,
    email_normalize,
    plaintext_to_html,
    sanitize_html,
    to_date_str,
    to_datetime_str,
)


@pytest.mark.parametrize(("given", "stored"), [
    ("2019-05-06 07:08:09", "2019-05-06 07:08:09"),
    ("2019-05-06 07:08", "2019-05-06 07:08:00"),
    ("2019-05-06", "2019-05-06 00:00:00"),
    (False, False),
    ("", False),
])
def test_datetime_accepted(given: object, stored: object) -> None:
    assert to_datetime_str(given) == stored


@pytest.mark.parametrize(("given", "line"), [
    ("2020-03-04T05:06:07+02:00",
     "ValueError: time data '2020-03-04T05:06:07+02:00' does not match format '%Y-%m-%d %H:%M:%S'"),
    ("2020-03-04T05:06:07", "ValueError: time data '2020-03-04T05:06:07' does not match format '%Y-%m-%d %H:%M:%S'"),
    ("2020-03-04 05:06:07.123456", "ValueError: unconverted data remains: .123456"),
    ("2020-03-04 05:06:07Z", "ValueError: unconverted data remains: Z"),
])
def test_datetime_refused_as_odoo_does(given: str, line: str) -> None:
    with pytest.raises(PyError) as info:
        to_datetime_str(given)
    assert info.value.exception_line == line
    assert info.value.traceback().splitlines()[-1] == line


def test_date_fields() -> None:
    assert to_date_str("2024-02-03 04:05:06") == "2024-02-03"
    assert to_date_str("2024-02-03") == "2024-02-03"
    with pytest.raises(PyError) as info:
        to_date_str("2020/13/45")
    assert info.value.exception_line == "ValueError: time data '2020/13/45' does not match format '%Y-%m-%d'"


@pytest.mark.parametrize(("given", "clean"), [
    ("<p>Historical <b>note</b></p><script>alert(1)</script>", "<p>Historical <b>note</b></p>"),
    ('<p onclick="steal()" class="x">Hi</p>', '<p class="x">Hi</p>'),
    ('<a href="javascript:alert(1)" title="t">x</a>', '<a href="" title="t">x</a>'),   # lxml empties the link
    ('<a href="https://example.com">x</a>', '<a href="https://example.com">x</a>'),
    ("<div><style>p{}</style><iframe src=x></iframe>ok</div>", "<p>ok</p>"),       # lone <div> dropped (Odoo)
    ('<img src="a.png" onerror="x()">', '<img src="a.png">'),
    ("plain text", "<p>plain text</p>"),
    ("a &amp; b <br> c", "<p>a &amp; b <br> c</p>"),
    ("<p>&lt;b&gt; stays text</p>", "<p>&lt;b&gt; stays text</p>"),
    ("<SCRIPT>x</SCRIPT><p>y</p>", "<p>y</p>"),
    ("", ""),
    (False, False),
])
def test_sanitize_html(given: object, clean: object) -> None:
    assert sanitize_html(given) == clean


def test_plaintext_body() -> None:
    assert plaintext_to_html("Plain <b>text</b> & more") == "<p>Plain &lt;b&gt;text&lt;/b&gt; &amp; more</p>"


def test_emails_and_websites() -> None:
    assert email_normalize("Jane Doe <JANE.DOE@Acme.Example>") == "jane.doe@acme.example"
    assert email_normalize("no address") is False
    assert email_formatted("BehTest Jane Doe", "Jane Doe <JANE.DOE@Acme.Example>") == \
        '"BehTest Jane Doe" <jane.doe@acme.example>'
    assert clean_website("acme.example") == "http://acme.example"
    assert clean_website("https://acme.example") == "https://acme.example"
