"""Html the tool writes is stored as written, on the sandbox and on the real Odoo 17 (one body each).

Every html value the tool sends is sanitised by the tool (nh3) and already in the form Odoo's own
sanitiser leaves it (``odoo.tools.mail.html_sanitize``), in every html field it writes: what Odoo reads
back is what was sent, so the field-level diff has nothing to forgive. Where the sandbox and the real
server disagree the real server is right.
"""

from __future__ import annotations

import pytest

from crm_migration.mapping import transforms as T

pytestmark = pytest.mark.integration
#: how Odoo 17 stores html (19 keeps a <div>); Odoo 19's own: tests/integration/odoo_sandbox/test_odoo19_behaviours.py
ODOO_TARGETS = ("sandbox", "odoo17")
CTX = {"tracking_disable": True, "mail_create_nolog": True, "mail_create_nosubscribe": True, "mail_notrack": True,
       "mail_activity_quick_update": True}

RICH = [
    '<p onclick="steal()">Kick-off <script>alert("x")</script><b>agreed</b><img src="javascript:alert(1)" '
    'onerror="steal()"><a href=" javascript:alert(1)">link</a></p><style>p{}</style><iframe src="x"></iframe>',
    "<p>Meeting notes 1</p><p>Next: send LOI &amp; comps – café</p>",
    "plain text & <stuff>", "<b>bold</b> tail", "text <i>it</i><p>para</p>after", "<div><p>nested</p></div>",
    "<div>only text</div>", "<div>a</div><div>b</div>", "<p>a&nbsp;b \u00a0 c</p>",
    '<a href="https://example.com/a?b=1&c=2">link</a>', '<a href="https://exämple.com/ü a$b[c]">unicode url</a>',
    '<p style="color: red; position: fixed; font-weight: bold">styled</p>', '<p style="width: expression(x)">e</p>',
    "<blockquote><p>quoted</p></blockquote><p>after</p>", "<p>line1\n&gt; quoted line</p>",
    "<p>Thanks</p><p>-- <br>Bob Smith</p><p>after the signature</p>", "<ul>\n  <li>one<li>two\n</ul>",
    '<table><tr><td colspan="2">a</td></tr></table>', "<h1>Title</h1><pre>code\n  indented\n&gt; q</pre>",
    "<b><p>block in inline</p></b>", "<h2><p>para in heading</p></h2>", '<img alt="say &quot;hi&quot;" src="https://x.example/i.png">',
    "<p>é ü 日本 😀</p>", '<p class="MsoNormal" id="x">attrs</p>', "<!-- c --><p>after a comment</p>",
]
PLAIN = ['a < b & "c" > d', "<script>alert(1)</script>", "line 1\r\nline 2\n\nnew para",
         "Thanks,\nBob\n\n-- \nBob Smith | ACME", "> quoted\n>> twice", "  indented\n\ttab", "x\u00a0y & &amp;"]


@pytest.fixture(scope="module")
def rpc(odoo_target):
    return odoo_target.rpc()


@pytest.fixture(scope="module")
def holders(rpc):
    """One record per html field the mapping writes, and how to write and read that field."""
    lead = rpc("crm.lead", "create", {"name": "html holder"}, context=CTX)
    partner = rpc("res.partner", "create", {"name": "html holder"}, context=CTX)
    event = rpc("calendar.event", "create", {"name": "html holder", "start": "2030-01-01 10:00:00",
                                             "stop": "2030-01-01 11:00:00"}, context=CTX)
    (lead_model,) = rpc("ir.model", "search", [("model", "=", "crm.lead")])

    def rewrite(model, rid, field):
        def put(html):
            rpc(model, "write", [rid], {field: html}, context=CTX)
            return rpc(model, "read", [rid], [field])[0][field]
        return put

    def new(model, vals, field):
        def put(html):
            rid = rpc(model, "create", {**vals, field: html}, context=CTX)
            return rpc(model, "read", [rid], [field])[0][field]
        return put

    return {"crm.lead.description": rewrite("crm.lead", lead, "description"),
            "res.partner.comment": rewrite("res.partner", partner, "comment"),
            "calendar.event.description": rewrite("calendar.event", event, "description"),
            "mail.message.body": new("mail.message", {"model": "crm.lead", "res_id": lead,
                                                      "message_type": "comment"}, "body"),
            "mail.activity.note": new("mail.activity", {"res_model_id": lead_model, "res_id": lead, "summary": "s",
                                                        "date_deadline": "2030-01-01"}, "note")}


@pytest.mark.parametrize("field", ["crm.lead.description", "res.partner.comment", "calendar.event.description",
                                   "mail.message.body", "mail.activity.note"])
def test_what_the_tool_sends_is_what_odoo_stores(holders, field):
    put = holders[field]
    sent = [T.html_clean(src) for src in RICH] + [T.html_text(text) for text in PLAIN]
    differ = [(html, stored) for html in sent if (stored := put(html)) != html]
    assert not differ, differ


def test_a_script_sent_raw_is_stripped_by_odoo_too(holders):
    """Odoo's own sanitiser, which the tool no longer relies on: a raw script never lands either."""
    stored = holders["crm.lead.description"](RICH[0])
    assert "<script" not in stored and "onclick" not in stored and "javascript:" not in stored
    assert "agreed" in stored


@pytest.mark.parametrize(("raw", "stored"), [
    ("<div><style>p{}</style><iframe src=x></iframe>ok</div>", "<p>ok</p>"),
    ("<div>a</div>", "<p>a</p>"),                                              # a lone <div> goes
    ("<div><p>x</p><p>y</p></div>", "<p>x</p><p>y</p>"),
    ('<div class="x">kept</div>', '<div class="x">kept</div>'),
    ("<p>a\u00a0b</p>", "<p>a&nbsp;b</p>"),
    ("<p title=\"it's\">q</p>", "<p title=\"it's\">q</p>"),
    ("<p title='say \"x\"'>dq</p>", "<p title='say \"x\"'>dq</p>"),
    ('<a title="a<b">t</a>', '<a title="a&lt;b">t</a>'),
    ('<a href="https://x.example/ü">u</a>', '<a href="https://x.example/%C3%BC">u</a>'),
    ("<blockquote>b</blockquote>", '<blockquote data-o-mail-quote-node="1" data-o-mail-quote="1">b</blockquote>'),
    ('<blockquote data-o-mail-quote="1" class="c">b</blockquote>',
     '<blockquote data-o-mail-quote="1" class="c" data-o-mail-quote-node="1">b</blockquote>'),
])
def test_how_odoo_stores_raw_html(holders, raw, stored):
    """Facts of Odoo's sanitiser the tool's html form is built on (the sandbox follows them)."""
    assert holders["crm.lead.description"](raw) == stored
