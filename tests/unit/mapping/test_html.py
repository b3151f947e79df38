"""Text stays text, html stays html: plain text is shown as the text it was; rich text is sanitised by the
tool itself (nh3) and leaves in the form Odoo 17 stores (the both-targets check of that form is
tests/integration/odoo_sandbox/test_html_on_odoo.py)."""

from __future__ import annotations

import pytest

from crm_migration.mapping import transforms as T

ATTACK = ('<p onclick="steal()" onmouseover="steal()">Kick-off <script>alert("x")</script><b>agreed</b>'
          '<img src="javascript:alert(1)" onerror="steal()"><a href=" JaVaScRiPt:alert(1)">link</a>'
          '<a href="vbscript:x">vb</a><a href="data:text/html;base64,PHNjcmlwdD4=">data</a>'
          '<iframe src="https://evil.example"></iframe><object data="x"></object><embed src="x">'
          '<style>p {color: red}</style><form action="https://evil.example"><input name="q"></form>'
          '<svg onload="steal()"><script>alert(2)</script></svg></p>')


def test_no_script_no_handler_no_javascript_url_survives():
    out = T.html_clean(ATTACK)
    assert out == "<p>Kick-off <b>agreed</b><img><a>link</a><a>vb</a><a>data</a></p>"
    low = out.lower()
    for bad in ("script", "alert", "onclick", "onerror", "onload", "onmouseover", "javascript:", "vbscript:",
                "data:", "iframe", "object", "embed", "style", "form", "input", "svg"):
        assert bad not in low, bad


@pytest.mark.parametrize(("source", "kept"), [
    ('<p style="color: red; position: fixed; font-weight: bold">x</p>',
     '<p style="color:red; font-weight:bold">x</p>'),                          # Odoo's style whitelist, its form
    ('<p style="background: url(javascript:alert(1)); behavior: url(x.htc)">x</p>', "<p>x</p>"),
    ('<p style="width: expression(alert(1))">x</p>', "<p>x</p>"),
    ('<a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="x">a</a>',
     '<p><a href="https://example.com/a?b=1&amp;c=2">a</a></p>'),
    ('<a href="mailto:jo@example.com">m</a>', '<p><a href="mailto:jo@example.com">m</a></p>'),
    ('<img src="https://example.com/x.png" alt="x" width="10">', '<p><img src="https://example.com/x.png" alt="x" width="10"></p>'),
    ('<p class="MsoNormal" id="p1" data-x="y" title="t">attributes go</p>', "<p>attributes go</p>"),
    ("<table><tr><td colspan=\"2\">cell</td></tr></table>", '<table><tbody><tr><td colspan="2">cell</td></tr></tbody></table>'),
])
def test_what_odoo_keeps_is_kept_in_odoos_form(source, kept):
    assert T.html_clean(source) == kept


@pytest.mark.parametrize(("source", "stored"), [
    ("<b>bold</b> tail", "<p><b>bold</b> tail</p>"),                       # top level: blocks only
    ("text <i>it</i><p>para</p>after", "<p>text <i>it</i></p><p>para</p><p>after</p>"),
    ("<div><p>nested</p></div>", "<p>nested</p>"),                          # Odoo strips a lone <div>
    ("<div>a</div><div>b</div>", "<div>a</div><div>b</div>"),
    ("<blockquote>q</blockquote>", '<blockquote data-o-mail-quote="1" data-o-mail-quote-node="1">q</blockquote>'),
    ("<p>line 1\n&gt; not a quote</p>", "<p>line 1 &gt; not a quote</p>"),  # "\n>" would become a hidden quote
    ("<p>--<br>Bob</p>", "<p><span>--</span><br>Bob</p>"),                 # "--<br>" would become a hidden signature
    ("<pre>a\n  b</pre>", "<pre>a<br>  b</pre>"),
    ("<b><p>x</p></b>", "<p><b>x</b></p>"),                                 # lxml would split the block off
    ('<a href="https://exämple.com/ü a">u</a>', '<p><a href="https://ex%C3%A4mple.com/%C3%BC%20a">u</a></p>'),
    ('<img alt="say &quot;hi&quot;" src="https://x.example/i.png">',
     "<p><img alt='say \"hi\"' src=\"https://x.example/i.png\"></p>"),
    ("<p>a\u00a0b</p>", "<p>a&nbsp;b</p>"),
    ("<ul>\n <li>one</li>\n <li>two</li>\n</ul>", "<ul><li>one</li><li>two</li></ul>"),
])
def test_rich_text_leaves_in_the_form_odoo_stores(source, stored):
    out = T.html_clean(source)
    assert out == stored
    assert T.html_clean(out) == out                                          # and stays so


@pytest.mark.parametrize(("text", "shown"), [
    ('a < b & "c" > d', '<p>a &lt; b &amp; "c" &gt; d</p>'),
    ("<script>alert(1)</script>", "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>"),
    ("line 1\r\nline 2\n\nnew para", "<p>line 1<br>line 2</p><p>new para</p>"),
    ("Thanks,\nBob\n\n-- \nBob Smith | ACME", "<p>Thanks,<br>Bob</p><p><span>-- </span><br>Bob Smith | ACME</p>"),
    ("> quoted\n>> twice", "<p>&gt; quoted<br>&gt;&gt; twice</p>"),
    ("&amp; stays &amp;", "<p>&amp;amp; stays &amp;amp;</p>"),
    ("  indented\n\ttab", "<p>indented<br>\ttab</p>"),
])
def test_plain_text_is_shown_as_the_text_it_was(text, shown):
    out = T.html_text(text)
    assert out == shown
    assert T.html_clean(out) == out


def test_a_note_keeps_its_title_as_text_and_its_body_as_sanitised_html():
    note = T.html_note("Q3 <plan>", '<p>Go <b>now</b></p><script>steal()</script><p onclick="x()">ok</p>',
                       body_is_html=True)
    assert note == "<p><b>Q3 &lt;plan&gt;</b></p><p>Go <b>now</b></p><p>ok</p>"
    assert T.html_note("Q3", "<b>shown as text</b>") == "<p><b>Q3</b></p><p>&lt;b&gt;shown as text&lt;/b&gt;</p>"
    assert T.html_note(None, b"<p>caf\xc3\xa9</p>", body_is_html=True) == "<p>café</p>"


def test_nothing_left_is_no_value():
    assert T.html_clean("<script>only()</script>") is None
    assert T.html_clean("   ") is None and T.html_text(None) is None and T.html_note(None) is None


def test_rich_text_in_a_text_field_is_the_text_it_shows():
    out = T.html_to_text('<p>Hello <b>world</b> &amp; co</p><ul><li>one</li><li>two</li></ul>'
                         '<script>steal()</script><p>a&nbsp;b<br>c</p>')
    assert out == "Hello world & co\none\ntwo\na b\nc"
    assert T.html_to_text("<p></p>") is None


def test_custom_fields_keep_text_as_text_and_html_as_html():
    """A Salesforce rich text area becomes an html field (sanitised); a plain text area a text field; an
    override of the type changes the transform with it."""
    from crm_migration.mapping.spec import load_pair

    pair = load_pair("apto_to_odoo").with_namespace("McLabs2")
    describe = [
        {"name": "Rich__c", "type": "textarea", "extraTypeInfo": "richtextarea", "custom": True},
        {"name": "Plain__c", "type": "textarea", "extraTypeInfo": "plaintextarea", "custom": True},
    ]
    plan = {c.name: c for c in pair.custom_fields.plan("Account", describe)}
    assert (plan["x_rich"].ttype, plan["x_rich"].field.fn[0].name) == ("html", "html_clean")
    assert (plan["x_plain"].ttype, plan["x_plain"].field.fn[0].name) == ("text", "text")
    rules = pair.custom_fields
    flipped = type(rules)(**{**rules.__dict__, "overrides": {"Account.Rich__c": {"ttype": "text"},
                                                             "Account.Plain__c": {"ttype": "html"}}})
    plan = {c.name: c for c in flipped.plan("Account", describe)}
    assert (plan["x_rich"].ttype, plan["x_rich"].field.fn[0].name) == ("text", "html_to_text")
    assert (plan["x_plain"].ttype, plan["x_plain"].field.fn[0].name) == ("html", "html_text")
