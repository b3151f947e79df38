"""Value conversions as Odoo 17 does them: datetimes, dates, HTML sanitising, emails, websites."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from html import escape
from html.parser import HTMLParser
from urllib.parse import quote

from .errors import value_error

DATE_FORMAT = "%Y-%m-%d"
DATETIME_FORMAT = "%Y-%m-%d %H:%M:%S"


def now_str() -> str:
    """Now, naive UTC, as Odoo stores datetimes."""
    return datetime.now(UTC).strftime(DATETIME_FORMAT)


def today_str() -> str:
    return datetime.now(UTC).strftime(DATE_FORMAT)


def to_datetime_str(value: object, tb_lines: int | None = None) -> str | bool:
    """Validate a datetime value like ``fields.Datetime.to_datetime`` and return its stored string.

    Accepts ``YYYY-MM-DD HH:MM:SS``, ``YYYY-MM-DD HH:MM`` and ``YYYY-MM-DD``; an ISO ``T``, an offset
    or microseconds raise the ``ValueError`` Python's ``strptime`` gives (as Odoo does).
    """
    if not value:
        return False
    if isinstance(value, datetime):
        if value.tzinfo:
            raise value_error(f"Datetime field expects a naive datetime: {value}", tb_lines)
        return value.strftime(DATETIME_FORMAT)
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT) + " 00:00:00"
    if not isinstance(value, str):
        raise value_error(f"time data {value!r} does not match format '{DATETIME_FORMAT}'", tb_lines)
    try:
        parsed = datetime.strptime(value, DATETIME_FORMAT[: len(value) - 2])
    except ValueError as exc:
        raise value_error(str(exc), tb_lines) from None
    return parsed.strftime(DATETIME_FORMAT)


def to_date_str(value: object, tb_lines: int | None = None) -> str | bool:
    """Validate a date value like ``fields.Date.to_date`` (a datetime string keeps only its date)."""
    if not value:
        return False
    if isinstance(value, date):
        return value.strftime(DATE_FORMAT)
    if not isinstance(value, str):
        raise value_error(f"time data {value!r} does not match format '{DATE_FORMAT}'", tb_lines)
    try:
        parsed = datetime.strptime(value[:10], DATE_FORMAT)
    except ValueError as exc:
        raise value_error(str(exc), tb_lines) from None
    return parsed.strftime(DATE_FORMAT)


def add_hours(dt: str, hours: float) -> str:
    return (datetime.strptime(dt, DATETIME_FORMAT) + timedelta(hours=hours)).strftime(DATETIME_FORMAT)


def hours_between(start: str, stop: str) -> float:
    delta = datetime.strptime(stop, DATETIME_FORMAT) - datetime.strptime(start, DATETIME_FORMAT)
    return round(delta.total_seconds() / 3600.0, 2)


# --- HTML ---------------------------------------------------------------------------------------

_DROP_WITH_CONTENT = frozenset({"script", "style", "iframe", "object", "embed", "applet", "frame",
                                "frameset", "noscript", "template", "meta", "link", "base", "title"})
_DROP_TAG_ONLY = frozenset({"html", "head", "body", "form"})
_VOID = frozenset({"br", "img", "hr", "input", "col", "area", "wbr", "source", "track", "param"})
_URL_ATTRS = frozenset({"href", "src", "action", "formaction", "background", "data"})
_URI_ATTRS = frozenset({"href", "src", "action"})
#: lxml.html.defs.block_tags (with the list and table parts): a top level holding one is wrapped in a <div>
_BLOCK = frozenset({"address", "blockquote", "center", "dir", "div", "dl", "fieldset", "form", "h1", "h2", "h3",
                    "h4", "h5", "h6", "hr", "isindex", "menu", "noframes", "noscript", "ol", "p", "pre", "table",
                    "ul", "article", "aside", "details", "figcaption", "figure", "footer", "header", "hgroup",
                    "main", "nav", "section", "summary", "li", "dd", "dt", "tr", "td", "th", "tbody", "thead",
                    "tfoot", "caption", "colgroup", "col", "legend", "optgroup", "option"})


def _attr(name: str, value: str) -> str:
    """An attribute as lxml (libxml2) writes it: a URL percent-encoded (``xmlURIEscapeStr``), ``&<>`` escaped,
    single quotes around a value holding ``"`` and no ``'``, a no-break space as ``&nbsp;`` (Odoo)."""
    if name in _URI_ATTRS:
        value = quote(value, safe="@/:=?;#%&,+-_.!~*'()")
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")
    if '"' in text and "'" not in text:
        return f" {name}='{text}'"
    return f' {name}="{text.replace(chr(34), "&quot;")}"'


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.skip_tag: str | None = None
        self.depth = 0
        self.top: list[tuple[str, bool]] = []     # top-level elements: (tag, has attributes)
        self.top_text = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.skip:
            if tag == self.skip_tag:
                self.skip += 1
            return
        if tag in _DROP_WITH_CONTENT:
            if tag not in _VOID and tag not in {"meta", "link", "base"}:
                self.skip, self.skip_tag = 1, tag
            return
        if tag in _DROP_TAG_ONLY:
            return
        kept: dict[str, str] = {}
        for name, value in attrs:
            name = name.lower()
            if name.startswith("on"):
                continue
            value = value or ""
            if name in _URL_ATTRS and re.sub(r"[\s\x00-\x1f]", "", value).lower().startswith(
                    ("javascript:", "vbscript:", "data:text/html")):
                value = ""                       # lxml's cleaner empties a javascript: link, keeps the attribute
            kept[name] = value
        if tag == "blockquote":                  # Odoo's quote detection (tag_quote) marks every blockquote
            kept.setdefault("data-o-mail-quote-node", "1")
            kept.setdefault("data-o-mail-quote", "1")
        if self.depth == 0:
            self.top.append((tag, bool(kept)))
        if tag not in _VOID:
            self.depth += 1
        self.out.append(f"<{tag}{''.join(_attr(n, v) for n, v in kept.items())}>")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID and not self.skip and tag not in _DROP_WITH_CONTENT | _DROP_TAG_ONLY:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if self.skip:
            if tag == self.skip_tag:
                self.skip -= 1
                if not self.skip:
                    self.skip_tag = None
            return
        if tag in _VOID or tag in _DROP_WITH_CONTENT or tag in _DROP_TAG_ONLY:
            return
        self.depth = max(0, self.depth - 1)
        self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            if self.depth == 0 and data.strip():
                self.top_text = True
            self.out.append(escape(data, quote=False).replace("\xa0", "&nbsp;"))


def sanitize_html(value: object, version: int = 17) -> str | bool:
    """Strip ``<script>`` (and other active content) and ``on*`` attributes, mark blockquotes as quotes,
    write attributes and no-break spaces as lxml and Odoo do, drop a lone ``<div>`` around everything
    (Odoo 17's ``html_normalize``; 19.0 drops only the one lxml adds, a ``<div>`` that was given stays), wrap
    bare text in ``<p>``.

    Empty input stays as given (``False`` or ``""``), markup is otherwise kept.
    """
    if value is False or value is None:
        return False
    text = str(value)
    if not text.strip():
        return text
    parser = _Sanitizer()
    parser.feed(text)
    parser.close()
    html = "".join(parser.out)
    if version < 19 and parser.top == [("div", False)] and not parser.top_text and html.startswith("<div>") \
            and html.endswith("</div>"):
        html = html[5:-6]
    if html and not html.lstrip().startswith("<"):
        html = f"<p>{html}</p>"
    elif (len(parser.top) > 1 or parser.top_text) and not any(t in _BLOCK for t, _ in parser.top):
        # several inline nodes at the top: lxml's fromstring wraps them in a <span> (a <div> when one is a block,
        # which Odoo then drops)
        html = f"<span>{html}</span>"
    return html


def plaintext_to_html(text: str) -> str:
    """A str body given to ``message_post`` is plain text: escaped and wrapped in ``<p>``."""
    escaped = escape(text, quote=False).replace("\n", "<br>")
    return f"<p>{escaped}</p>"


# --- emails, websites --------------------------------------------------------------------------

_EMAIL_RE = re.compile(r"([^\s<>,;\"']+@[^\s<>,;\"']+)")


def email_normalize(value: object) -> str | bool:
    """The lower-cased bare address of ``"Name <addr>"`` (``False`` when there is none)."""
    if not value or not isinstance(value, str):
        return False
    found = _EMAIL_RE.findall(value)
    return found[0].lower() if found else False


def email_formatted(name: object, email: object) -> str | bool:
    addr = email_normalize(email) or (email if isinstance(email, str) else False)
    if not addr:
        return False
    return f'"{name or "False"}" <{addr}>'


def clean_website(value: object) -> object:
    if isinstance(value, str) and value and not re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", value):
        return "http://" + value
    return value
