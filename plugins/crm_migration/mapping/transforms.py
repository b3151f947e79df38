"""Pure, typed transforms named by the mapping files (``fn: normalize_email``).

Every transform returns the value **as Odoo stores it**, so that reading the record back gives the
same value (``engine.values.canonical`` of both sides compare equal) and a rerun writes nothing:
naive UTC ``YYYY-MM-DD HH:MM:SS`` datetimes, ``YYYY-MM-DD`` dates, ``0.0`` rather than ``None`` for
numbers (Odoo reads an empty float as ``0.0``), websites with the ``http://`` Odoo would add, html as
Odoo's sanitiser serialises it (``<br>``, text escaped without quotes).

A transform takes the source value(s) positionally (one per ``from:`` field, in order) and its
``args:`` as keywords. Bad data raises :class:`TransformError`; the mapper turns it into a
:class:`~crm_migration.errors.MappingError` naming the object, the record and the Odoo field.
No transform does I/O or reads a clock.
"""

from __future__ import annotations

import base64 as _b64
import hashlib
import html
import inspect
import re
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from datetime import date as _date
from typing import Any, NamedTuple, TypeVar

import nh3

__all__ = ["TRANSFORMS", "Flagged", "TransformError", "apply", "check_args", "transform"]

F = TypeVar("F", bound=Callable[..., Any])

TRANSFORMS: dict[str, Callable[..., Any]] = {}


class TransformError(ValueError):
    """A source value a transform cannot turn into an Odoo value (the reason is for people)."""


class Flagged(NamedTuple):
    """A value that lands, repaired or kept as it is, but is flagged (repair and flag, never a lost record).

    A transform returns ``Flagged(value, reason)``: the mapper writes ``value`` and records ``(field,
    reason)`` in the row's warnings, which the loader writes to the audit log as a ``flag``.
    """

    value: Any
    reason: str


def transform(fn: F | None = None, *, name: str | None = None) -> Any:
    """Register ``fn`` under its name (or ``name``) for mapping files."""

    def register(f: F) -> F:
        key = name or f.__name__.rstrip("_")
        if key in TRANSFORMS and TRANSFORMS[key] is not f:
            raise ValueError(f"transform {key!r} registered twice")
        TRANSFORMS[key] = f
        return f

    return register(fn) if fn is not None else register


def check_args(name: str, n_values: int, args: Mapping[str, Any]) -> None:
    """Raise ``TypeError`` if transform ``name`` cannot take ``n_values`` values and ``args``."""
    fn = TRANSFORMS[name]
    sig = inspect.signature(fn)
    try:
        sig.bind(*([None] * n_values), **args)
    except TypeError as exc:
        params = ", ".join(str(p) for p in sig.parameters.values())
        raise TypeError(f"{name}({params}): {exc}") from None


def apply(name: str, values: Sequence[Any], args: Mapping[str, Any] | None = None) -> Any:
    """Call transform ``name`` on ``values`` with ``args``."""
    return TRANSFORMS[name](*values, **(args or {}))


def _empty(value: Any) -> bool:
    return value is None or value is False or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, list | tuple) and not value)


def _text(value: Any) -> str | None:
    if value is None or value is False:
        return None
    text = str(value).replace("\r\n", "\n").replace("\r", "\n").strip()
    return text or None


# ---- text ----------------------------------------------------------------------------------------


@transform
def text(value: Any, max_length: int | None = None) -> str | None:
    """Strip; empty → ``None`` (Odoo's "no value"); optionally cut to ``max_length`` characters."""
    out = _text(value)
    if out is not None and max_length is not None:
        out = out[:max_length].rstrip()
    return out


@transform
def truncate(value: Any, length: int = 255, ellipsis: str = "") -> str | None:
    """Cut text to ``length`` characters (``ellipsis`` included in the length when cut)."""
    out = _text(value)
    if out is None or len(out) <= length:
        return out
    return out[: max(0, length - len(ellipsis))].rstrip() + ellipsis


@transform
def join_name(*parts: str | None) -> str:
    """Join name parts; Odoo needs a name, so never return ''."""
    return " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip()) or "(no name)"


@transform
def first(*values: Any) -> Any:
    """The first non-empty value (a coalesce), else ``None``."""
    for value in values:
        if not _empty(value):
            return value
    return None


@transform
def as_list(*values: Any) -> list[Any]:
    """The non-empty values as a list (a single reference for a many2many: ``partner_ids``)."""
    return [v for v in values if not _empty(v)]


@transform
def const_if(value: Any, then: Any = True, otherwise: Any = None) -> Any:
    """``then`` when ``value`` is set (truthy), else ``otherwise``."""
    return then if value and not _empty(value) else otherwise


_EMAIL_RE = re.compile(r"^[^@\s<>(),;:\"\[\]\\]+@[^@\s<>(),;:\"\[\]\\]+\.[^@\s<>(),;:\"\[\]\\.]{2,}$")


@transform
def normalize_email(value: str | None) -> Any:
    """Lower-case and strip an address; ``None`` when empty.

    ``Jane Doe <Jane@X.com>`` keeps only the address (Odoo would store the display form as is and
    the lead sync would then copy it around). An address that is not valid (``a@@b``) is a value Odoo
    can hold: it lands as written (stripped), :class:`Flagged`, never costing its record.
    """
    out = _text(value)
    if out is None:
        return None
    if out.lower().startswith("mailto:"):
        out = out[7:].strip()
    if (m := re.fullmatch(r"[^<>]*<([^<>]+)>", out)) is not None:
        out = m.group(1).strip()
    out = out.lower()
    if not _EMAIL_RE.match(out) or ".." in out or out.split("@")[1].startswith("."):
        kept = str(value).strip()
        return Flagged(kept, f"invalid email address {kept!r}, kept as written")
    return out


@transform
def phone(value: Any) -> str | None:
    """A phone number as written, whitespace collapsed; Odoo computes its own sanitised form."""
    out = _text(value)
    if out is None:
        return None
    return re.sub(r"\s+", " ", out)


@transform
def street_line(value: Any, line: int = 1) -> str | None:
    """A multi-line street: ``line=1`` the first line (``street``), ``line=2`` the rest (``street2``)."""
    out = _text(value)
    if out is None:
        return None
    lines = [ln.strip() for ln in out.split("\n") if ln.strip()]
    if line == 1:
        return lines[0] if lines else None
    rest = ", ".join(lines[1:])
    return rest or None


# ---- websites (Odoo 17 res.partner._clean_website, through werkzeug 2 url_parse/url_unparse) ------

_SCHEME_RE = re.compile(r"^[a-zA-Z0-9+-.]+$")


def _url_parse(url: str) -> tuple[str, str, str, str, str]:
    scheme = netloc = query = fragment = ""
    i = url.find(":")
    if i > 0 and _SCHEME_RE.match(url[:i]):
        rest = url[i + 1:]
        if not rest or any(c not in "0123456789" for c in rest):
            scheme, url = url[:i].lower(), rest
    if url[:2] == "//":
        delim = len(url)
        for c in "/?#":
            wdelim = url.find(c, 2)
            if wdelim >= 0:
                delim = min(delim, wdelim)
        netloc, url = url[2:delim], url[delim:]
    if "#" in url:
        url, fragment = url.split("#", 1)
    if "?" in url:
        url, query = url.split("?", 1)
    return scheme, netloc, url, query, fragment


def _url_unparse(scheme: str, netloc: str, path: str, query: str, fragment: str) -> str:
    url = ""
    if netloc or (scheme and path.startswith("/")):
        if path and path[:1] != "/":
            path = "/" + path
        url = "//" + (netloc or "") + path
    elif path:
        url += path
    if scheme:
        url = scheme + ":" + url
    if query:
        url = url + "?" + query
    if fragment:
        url = url + "#" + fragment
    return url


@transform
def website(value: Any) -> str | None:
    """A website as Odoo stores it: ``http://`` prepended when there is no scheme (``_clean_website``).

    Applying it twice changes nothing, and Odoo applied to its output changes nothing, so what we
    write is what we read back.
    """
    out = _text(value)
    if out is None:
        return None
    scheme, netloc, path, query, fragment = _url_parse(out)
    if scheme:
        return out
    if not netloc:
        netloc, path = path, ""
    return _url_unparse("http", netloc, path, query, fragment)


# ---- html ----------------------------------------------------------------------------------------
#
# Every html value the tool writes is built or cleaned here, and leaves in the form Odoo 17 stores it
# (``odoo.tools.mail.html_sanitize``: lxml parse, quote detection, serialisation), so what Odoo reads
# back is what was sent. Rich text from a source is sanitised by the tool itself (nh3, whatever the
# target does): no script or style element, no event handler, no ``javascript:`` URL, only the tags
# and attributes below.

#: tags kept (Odoo's sanitiser keeps them all); any other tag is dropped, its text kept
HTML_TAGS = frozenset({
    "a", "abbr", "b", "blockquote", "br", "caption", "code", "col", "colgroup", "dd", "del", "div", "dl", "dt",
    "em", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre",
    "q", "s", "small", "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "u", "ul"})
#: attributes kept (``*``: on every tag); styles only with the properties Odoo keeps in a message body
HTML_ATTRIBUTES = {"*": {"style"}, "a": {"href"}, "img": {"src", "alt", "width", "height"},
                   "td": {"colspan", "rowspan"}, "th": {"colspan", "rowspan"},
                   "blockquote": {"data-o-mail-quote", "data-o-mail-quote-node"}}
HTML_URL_SCHEMES = frozenset({"http", "https", "mailto", "tel"})
#: ``odoo.tools.mail._Cleaner._style_whitelist`` (mail.message body and mail.activity note keep only these)
HTML_STYLES = frozenset(
    {"font-size", "font-family", "font-weight", "font-style", "background-color", "color", "text-align",
     "line-height", "letter-spacing", "text-transform", "text-decoration", "opacity", "float", "vertical-align",
     "display", "padding", "padding-top", "padding-left", "padding-bottom", "padding-right", "margin",
     "margin-top", "margin-left", "margin-bottom", "margin-right", "white-space", "border", "border-color",
     "border-radius", "border-style", "border-width", "border-top", "border-bottom", "height", "width",
     "max-width", "min-width", "min-height", "border-collapse", "border-spacing", "caption-side", "empty-cells",
     "table-layout"}
    | {f"border-{side}-{what}" for side in ("top", "bottom", "left", "right")
       for what in ("style", "color", "width", "left-radius", "right-radius")})

_VOID = frozenset({"br", "img", "hr", "col", "wbr", "area"})
_BLOCK = frozenset({"p", "div", "ul", "ol", "li", "dl", "dd", "dt", "blockquote", "h1", "h2", "h3", "h4", "h5",
                    "h6", "pre", "table", "hr", "caption", "colgroup", "col", "tbody", "thead", "tfoot", "tr", "td",
                    "th"})
#: may hold block elements as lxml (libxml2) parses them; in any other element a block would be split off
_HOLDERS = frozenset({"div", "li", "td", "th", "dd", "dt", "blockquote", "ul", "ol", "dl", "table", "tbody",
                      "thead", "tfoot", "tr", "colgroup"})
_NO_TEXT = frozenset({"ul", "ol", "dl", "table", "tbody", "thead", "tfoot", "tr", "colgroup"})
_TOKEN = re.compile(r'<(/?)([a-z][a-z0-9]*)((?:[^>"]|"[^"]*")*)>|([^<]+)')
_ATTR = re.compile(r'([^\s=/]+)(?:="([^"]*)")?')
_STYLE = re.compile(r'''([\w-]+)\s*:\s*((?:[^;"']|"[^";]*"|'[^';]*')+)''')     # Odoo's _Cleaner._style_re
_STYLE_VALUE = re.compile(r"""^(?:[\w\s#%.,+\-"']|(?:rgba?|hsla?)\([\d\s.,%]*\))*$""")   # no url(), expression()
_SIGNATURE = re.compile(r"^--\s?$")          # Odoo's signature_begin, on an element's first text


class _El:
    __slots__ = ("attrs", "kids", "tag")

    def __init__(self, tag: str, attrs: list[tuple[str, str]] | None = None) -> None:
        self.tag, self.attrs, self.kids = tag, attrs or [], []

    def html(self) -> str:
        attrs = "".join(f" {name}={_quoted(value)}" for name, value in self.attrs)
        if self.tag in _VOID:
            return f"<{self.tag}{attrs}>"
        return f"<{self.tag}{attrs}>{_serialise(self.kids)}</{self.tag}>"


def _serialise(nodes: Sequence[str | _El]) -> str:
    return "".join(n.replace("\xa0", "&nbsp;") if isinstance(n, str) else n.html() for n in nodes)


def _quoted(value: str) -> str:
    """An attribute value as lxml writes it: single quotes around a value holding ``"`` (and no ``'``)."""
    text = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\xa0", "&nbsp;")
    if '"' in text and "'" not in text:
        return f"'{text}'"
    return '"' + text.replace('"', "&quot;") + '"'


def _tree(markup: str) -> list[str | _El]:
    """The nodes of nh3's output (well formed, attributes double-quoted); text stays escaped."""
    root = _El("")
    stack = [root]
    for m in _TOKEN.finditer(markup):
        closing, tag, attrs, text = m.groups()
        if text is not None:
            stack[-1].kids.append(text)
        elif closing:
            while len(stack) > 1 and stack.pop().tag != tag:
                pass
        else:
            el = _El(tag, [(n, html.unescape(v or "")) for n, v in _ATTR.findall(attrs)])
            stack[-1].kids.append(el)
            if tag not in _VOID:
                stack.append(el)
    return root.kids


def _attrs(el: _El) -> list[tuple[str, str]]:
    """Attributes as Odoo stores them: URLs escaped as libxml2 writes them (``xmlURIEscapeStr``), styles
    joined as Odoo's style sanitiser joins them, Odoo's quote marks on a blockquote."""
    if el.tag == "blockquote":
        return [("data-o-mail-quote", "1"), ("data-o-mail-quote-node", "1")]
    out = []
    for name, value in el.attrs:
        if name in ("href", "src"):
            value = urllib.parse.quote(value, safe="@/:=?;#%&,+-_.!~*'()")
        elif name == "style":
            value = "; ".join(f"{k.lower()}:{v.strip()}" for k, v in _STYLE.findall(value)
                              if _STYLE_VALUE.match(v.strip()))
            if not value:
                continue
        out.append((name, value))
    return out


def _odoo_form(nodes: list[str | _El], *, pre: bool = False, holder: bool = True) -> list[str | _El]:
    """Rewrite nodes into the form Odoo's sanitiser leaves unchanged."""
    out: list[str | _El] = []
    for node in nodes:
        if isinstance(node, str):
            if pre:                               # a line break in <pre> as <br> (no newline left in text)
                for i, line in enumerate(re.split(r"\r\n|\r|\n", node)):
                    if i:
                        out.append(_El("br"))
                    if line:
                        out.append(line)
            else:                                 # a newline in text is a space; Odoo reads "\n>" as a quote
                out.append(re.sub(r"\r\n|\r|\n", " ", node))
            continue
        node.attrs = _attrs(node)
        node.kids = _odoo_form(node.kids, pre=pre or node.tag == "pre", holder=node.tag in _HOLDERS)
        if node.tag in _NO_TEXT:                  # lxml drops the whitespace between rows and items
            node.kids = [k for k in node.kids if not isinstance(k, str) or k.strip()]
        first = node.kids[0] if node.kids else None
        if isinstance(first, str) and _SIGNATURE.match(html.unescape(first)) and any(
                isinstance(k, _El) and k.tag == "br" for k in node.kids):
            span = _El("span")                    # "--<br>..." would be marked a signature, and hidden
            span.kids = [first]
            node.kids[0] = span
        if not holder and node.tag in _BLOCK:     # a block inside an inline element, a <p>, a heading:
            out.extend(_inline(node.kids))        # its content stays, the block goes (lxml would split them)
        else:
            out.append(node)
    return out


def _inline(nodes: list[str | _El]) -> Iterator[str | _El]:
    """``nodes`` with every block element among them (at any depth) replaced by its content."""
    for node in nodes:
        if isinstance(node, _El) and node.tag in _BLOCK:
            yield from _inline(node.kids)
        else:
            if isinstance(node, _El):
                node.kids = list(_inline(node.kids))
            yield node


def _top_level(nodes: list[str | _El]) -> list[str | _El]:
    """Blocks only at the top (inline runs wrapped in <p>); no lone <div> around everything."""
    blocks: list[str | _El] = []
    run: list[str | _El] = []
    for node in [*nodes, None]:
        if node is None or (isinstance(node, _El) and node.tag in _BLOCK):
            if any(not isinstance(k, str) or k.strip() for k in run):
                para = _El("p")
                para.kids = run
                blocks.append(para)
            run = []
            if node is not None and (node.tag != "p" or node.kids or node.attrs):   # an empty <p> shows nothing
                blocks.append(node)
        else:
            run.append(node)
    if len(blocks) == 1 and isinstance(blocks[0], _El) and blocks[0].tag == "div" and not blocks[0].attrs:
        return _top_level(blocks[0].kids)         # Odoo strips a lone <div> around everything
    return blocks


def _html(markup: str) -> str | None:
    """``markup`` sanitised (nh3) and in Odoo's stored form; ``None`` when nothing is left."""
    clean = nh3.clean(markup, tags=set(HTML_TAGS), attributes={k: set(v) for k, v in HTML_ATTRIBUTES.items()},
                      url_schemes=set(HTML_URL_SCHEMES), link_rel=None, strip_comments=True,
                      filter_style_properties=set(HTML_STYLES))
    return _serialise(_top_level(_odoo_form(_tree(clean)))) or None


def _esc(text_: str) -> str:
    # lxml (Odoo's sanitiser) escapes &, < and > in text, never quotes
    return html.escape(text_, quote=False)


def _paragraphs(text_: str) -> str:
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text_) if b.strip()]
    return "".join("<p>" + "<br>".join(_esc(line) for line in block.split("\n")) + "</p>" for block in blocks)


@transform
def html_text(*parts: Any) -> str | None:
    """Plain text → html showing that text: escaped, blank lines → paragraphs, newlines → ``<br>``.

    Several parts become consecutive paragraphs (empty ones skipped); nothing → ``None``.
    """
    return _html("".join(_paragraphs(t) for p in parts if (t := _text(p)) is not None))


@transform
def html_note(title: Any, *body: Any, body_is_html: bool = False) -> str | None:
    """A titled note: ``<p><b>title</b></p>`` then the body as plain text (:func:`html_text`) or, with
    ``body_is_html``, as rich text sanitised (:func:`html_clean`)."""
    head = _text(title)
    rest = "".join(html_clean(b) or "" for b in body) if body_is_html else (html_text(*body) or "")
    return _html((f"<p><b>{_esc(head)}</b></p>" if head else "") + rest)


@transform
def html_fields(*values: Any, labels: Sequence[str] = ()) -> str | None:
    """One ``<p><b>label</b>: value</p>`` per non-empty value (labels in order)."""
    out = []
    for label, value in zip(labels, values, strict=False):
        if (t := _text(value)) is not None:
            out.append(f"<p><b>{_esc(label)}</b>: {_esc(t)}</p>")
    return _html("".join(out))


@transform
def html_clean(value: Any) -> str | None:
    """Rich text from the source (a ContentNote body) sanitised by nh3 and in the form Odoo stores it.

    Kept: :data:`HTML_TAGS` with :data:`HTML_ATTRIBUTES` (styles reduced to :data:`HTML_STYLES`, links
    to :data:`HTML_URL_SCHEMES`). Dropped: script and style elements with their content, comments,
    event handlers, ``javascript:`` and other URLs; any other tag is dropped and its text kept.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    src = _text(value)
    return None if src is None else _html(src)


@transform
def html_to_text(value: Any) -> str | None:
    """Rich text → the plain text it shows, for a text field: tags dropped (a line per paragraph, list item,
    row or ``<br>``), entities resolved, no markup left."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    src = _text(value)
    if src is None:
        return None
    marked = re.sub(r"(?i)<br\s*/?>|</(?:p|div|li|h[1-6]|tr|blockquote|pre|dt|dd)\s*>", "\n", src)
    plain = html.unescape(nh3.clean(marked, tags=set(), strip_comments=True)).replace("\xa0", " ")
    lines = [re.sub(r"[ \t]+", " ", ln).strip() for ln in plain.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() or None


# ---- dates and times -------------------------------------------------------------------------------

_SF_DT_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?\s*(Z|[+-]\d{2}:?\d{2})?$")


def _parse_dt(value: Any) -> datetime:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    m = _SF_DT_RE.match(str(value).strip())
    if not m:
        raise TransformError(f"not a datetime: {value!r}")
    day, hh, mm, ss, _frac, tz = m.groups()
    try:
        naive = datetime.fromisoformat(f"{day} {hh}:{mm}:{ss or '00'}")
    except ValueError:
        raise TransformError(f"not a datetime: {value!r}") from None
    offset = timedelta(0)
    if tz and tz != "Z":
        sign = -1 if tz[0] == "-" else 1
        digits = tz[1:].replace(":", "")
        offset = sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    return (naive - offset).replace(tzinfo=UTC)   # fractions of a second are dropped (Odoo keeps none)


def _odoo_dt(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@transform
def sf_datetime_to_odoo(value: Any) -> str | None:
    """Salesforce ``2024-03-05T14:02:11.000+0000`` (any offset, ``Z``) → naive UTC ``2024-03-05 14:02:11``."""
    if _empty(value):
        return None
    return _odoo_dt(_parse_dt(value))


@transform
def date(value: Any) -> str | None:
    """A date as ``YYYY-MM-DD``; a datetime with an offset is converted to UTC first."""
    if _empty(value):
        return None
    if isinstance(value, datetime):
        return _parse_dt(value).date().isoformat()
    if isinstance(value, _date):
        return value.isoformat()
    raw = str(value).strip()
    if len(raw) == 10:
        try:
            return _date.fromisoformat(raw).isoformat()
        except ValueError:
            raise TransformError(f"not a date: {value!r}") from None
    return _parse_dt(raw).date().isoformat()


@transform
def date_to_datetime(value: Any, time: str = "12:00:00") -> str | None:
    """A date as an Odoo datetime at ``time`` UTC (noon by default: the same calendar day from UTC-12 to UTC+12)."""
    day = date(value)
    if day is None:
        return None
    if not re.fullmatch(r"\d{2}:\d{2}:\d{2}", time):
        raise TransformError(f"bad time {time!r}")
    return f"{day} {time}"


@transform
def seconds_to_duration_hours(value: Any) -> float:
    """Seconds → hours as a float (Odoo durations are float hours); empty → 0.0."""
    if _empty(value):
        return 0.0
    return round(to_float(value) / 3600.0, 6)


@transform
def minutes_to_hours(value: Any) -> float:
    """Minutes → float hours; empty → 0.0."""
    if _empty(value):
        return 0.0
    return round(to_float(value) / 60.0, 6)


@transform
def event_start(start: Any, all_day: Any = False) -> str | None:
    """``calendar.event.start``: the start in UTC; an all-day event starts at 08:00 of its day, as Odoo sets it."""
    if _empty(start):
        return None
    if to_bool(all_day):
        return f"{date(start)} 08:00:00"
    return sf_datetime_to_odoo(start)


@transform
def event_stop(end: Any, start: Any = None, all_day: Any = False) -> str | None:
    """``calendar.event.stop``: the end in UTC; an all-day event ends at 18:00 of its last day (Salesforce's
    end is exclusive midnight, so the last day is the day before it); no end → the start."""
    if _empty(end):
        return event_start(start, all_day)
    if to_bool(all_day):
        end_dt = _parse_dt(end)
        last = (end_dt - timedelta(seconds=1)).date() if end_dt.time() == datetime.min.time() else end_dt.date()
        start_day = date(start) if not _empty(start) else None
        if start_day and last.isoformat() < start_day:
            last = _date.fromisoformat(start_day)
        return f"{last.isoformat()} 18:00:00"
    return sf_datetime_to_odoo(end)


# ---- numbers and flags -------------------------------------------------------------------------------


def to_float(value: Any) -> float:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    try:
        return float(str(value).strip().replace(",", "")) if isinstance(value, str) else float(value)
    except (TypeError, ValueError):
        raise TransformError(f"not a number: {value!r}") from None


def to_bool(value: Any) -> bool:
    if isinstance(value, str):
        low = value.strip().lower()
        if low in ("true", "1", "yes", "y", "t"):
            return True
        if low in ("false", "0", "no", "n", "f", ""):
            return False
        raise TransformError(f"not a boolean: {value!r}")
    return bool(value)


@transform(name="bool")
def bool_(value: Any) -> bool:
    """A boolean; empty → ``False`` (Odoo has no null boolean)."""
    return False if value is None else to_bool(value)


@transform(name="float")
def float_(value: Any, digits: int | None = None) -> float:
    """A float (also for monetary fields); empty → ``0.0`` as Odoo reads it back."""
    if _empty(value):
        return 0.0
    out = to_float(value)
    return round(out, digits) if digits is not None else out


@transform(name="int")
def int_(value: Any) -> int:
    """An integer; empty → ``0``; ``12.0`` is 12, ``12.5`` is an error."""
    if _empty(value):
        return 0
    out = to_float(value)
    if out != int(out):
        raise TransformError(f"not an integer: {value!r}")
    if abs(out) >= 2**31:
        raise TransformError(f"integer out of range for Odoo: {value!r}")
    return int(out)


@transform
def probability(value: Any) -> float:
    """A percentage in [0, 100]; empty → 0.0; a fraction (0.4) is not guessed: out of range is an error."""
    if _empty(value):
        return 0.0
    out = to_float(value)
    if not 0.0 <= out <= 100.0:
        raise TransformError(f"probability {value!r} outside [0, 100]")
    return round(out, 2)


@transform
def deal_probability(value: Any, is_closed: Any = False, is_won: Any = False, empty: float | None = 0.0
                     ) -> float | None:
    """Odoo's rule for a deal: won → 100, lost (closed, not won) → 0, else the source probability (its stage's
    where the deal has none of its own); an open deal without one → ``empty`` (0.0; ``null``: none, not sent)."""
    if to_bool(is_won or False):
        return 100.0
    if to_bool(is_closed or False):
        return 0.0
    return empty if _empty(value) else probability(value)


@transform
def deal_active(is_closed: Any = False, is_won: Any = False) -> bool:
    """A lost deal (closed, not won) is archived in Odoo (``active=False``)."""
    return not (to_bool(is_closed or False) and not to_bool(is_won or False))


@transform
def if_lost(value: Any, is_closed: Any = False, is_won: Any = False) -> Any:
    """``value`` for a lost deal (closed, not won), else ``None`` (a loss reason on an open deal is noise)."""
    lost = to_bool(is_closed or False) and not to_bool(is_won or False)
    return value if lost and not _empty(value) else None


@transform
def if_closed(value: Any, is_closed: Any = False) -> Any:
    """``value`` when closed, else ``None``."""
    return value if to_bool(is_closed or False) and not _empty(value) else None


@transform
def all_true(*values: Any) -> bool:
    """True when every value is true."""
    return all(to_bool(v or False) for v in values)


@transform
def closed_lost(is_closed: Any = False, is_won: Any = False) -> bool:
    """True for a closed stage that is not won (folded in Odoo's kanban)."""
    return to_bool(is_closed or False) and not to_bool(is_won or False)


# ---- picklists ---------------------------------------------------------------------------------------


def _norm_key(value: Any) -> str:
    return re.sub(r"[^0-9a-z]+", "", str(value).casefold())


_MISSING = object()


@transform
def selection(value: Any, mapping: Mapping[str, Any] | None = None, default: Any = _MISSING,
              case_insensitive: bool = True) -> Any:
    """Map a picklist value through ``mapping``; unknown → ``default`` (an error when no default).

    Keys match ignoring case, spaces and punctuation (``case_insensitive``). Empty → ``default`` or ``None``.
    """
    mapping = mapping or {}
    if _empty(value):
        return None if default is _MISSING else default
    if str(value) in mapping:
        return mapping[str(value)]
    if case_insensitive:
        norm = {_norm_key(k): v for k, v in mapping.items()}
        if (key := _norm_key(value)) in norm:
            return norm[key]
    if default is _MISSING:
        raise TransformError(f"value {value!r} not in {sorted(mapping)}")
    return default


PRIORITY_MAP = {"low": "0", "medium": "1", "normal": "1", "high": "2", "critical": "3", "urgent": "3",
                "veryhigh": "3"}


@transform
def priority_to_odoo(value: Any, mapping: Mapping[str, str] | None = None, default: str = "0") -> str:
    """Apto priority picklist → Odoo's ``'0'``..``'3'``; keep the raw value in an ``x_`` field alongside.

    Matching ignores case and punctuation (``Urgent!!`` is ``urgent``); an unknown or empty value → ``default``.
    """
    table = {_norm_key(k): v for k, v in (mapping or PRIORITY_MAP).items()}
    if _empty(value):
        return default
    out = table.get(_norm_key(value), default)
    if out not in ("0", "1", "2", "3"):
        raise TransformError(f"priority mapping gives {out!r}, not one of '0'..'3'")
    return out


@transform
def multipicklist(value: Any, as_list: bool = False, sep: str = ";") -> Any:
    """Salesforce multi-select ``a;b`` → ``['a', 'b']`` (``as_list``) or text joined by ``sep``; empty → ``None``."""
    if _empty(value):
        return None
    items = [v.strip() for v in (value if isinstance(value, list | tuple) else str(value).split(";")) if str(v).strip()]
    if not items:
        return None
    return items if as_list else sep.join(items)


# ---- partners ------------------------------------------------------------------------------------------


def _addr(parts: Iterable[Any]) -> tuple[str, ...]:
    return tuple(re.sub(r"\s+", " ", str(p)).strip().casefold() if not _empty(p) else "" for p in parts)


@transform
def has_own_address(*parts: Any) -> bool:
    """True when a contact has an address of its own: the first half of ``parts`` (its street, city, state,
    zip, country) is not empty and differs from the second half (its company's)."""
    if len(parts) % 2:
        raise TransformError("has_own_address needs the contact's and the company's address parts, as many of each")
    half = len(parts) // 2
    own, company = _addr(parts[:half]), _addr(parts[half:])
    return any(own) and own != company


@transform
def sends_own_address(parent_id: Any, *parts: Any) -> bool:
    """Whether a partner's address fields are written: always without a parent (so an address removed at
    the source is cleared too); under a parent only when its own address differs from the parent's
    (``parts``: its street, city, state, zip, country, then the parent's), else Odoo copies the parent's."""
    if _empty(parent_id):
        return True
    return has_own_address(*parts)


#: res.partner's address fields (Odoo's ``ADDRESS_FIELDS``): what a ``contact``-type child copies from its parent, and
#: what Odoo 17 gives a parent without any of them from its first child created with one
ADDRESS_FIELDS = ("street", "street2", "city", "zip", "state_id", "country_id")


@transform
def parent_without_address(parent_id: Any, *parts: Any) -> bool:
    """True when a partner has a parent whose address ``parts`` (street, city, state, zip, country) are all
    empty: Odoo gives such a parent the address of its first child created with one
    (``_handle_first_contact_creation``), so the child's address is written after the create."""
    return not _empty(parent_id) and not any(_addr(parts))


@transform
def contact_partner_type(account_id: Any, own_address: Any = False, own_type: str = "other") -> str:
    """``res.partner.type`` of a contact: ``own_type`` ('other') when it has a company *and* its own address,
    so Odoo's address sync does not overwrite that address with the company's; else ``'contact'``
    (without a company nothing is synced, so ``'contact'`` keeps its address too)."""
    if own_type not in ("contact", "invoice", "delivery", "other"):
        raise TransformError(f"bad partner type {own_type!r}")
    return own_type if not _empty(account_id) and own_address else "contact"


# ---- people and their companies (Link app) --------------------------------------------------------------


@transform
def person_name(first_name: Any, last_name: Any, *others: Any) -> Any:
    """A person's name: first + last name; with neither, the first of ``others`` that is set (an email),
    else ``(no name)``: Odoo needs a name, and a contact with none still lands, :class:`Flagged`."""
    name = " ".join(p.strip() for p in (first_name, last_name) if isinstance(p, str) and p.strip())
    if name:
        return name
    other = next((t for o in others if (t := _text(o)) is not None), None)
    if other is not None:
        return Flagged(other, f"no first or last name: named {other!r}")
    return Flagged("(no name)", "no first or last name, nothing else to name it by: named '(no name)'")


def _link_key(row: Mapping[str, Any]) -> tuple[str, str]:
    return str(row.get("updated_at") or ""), str(row.get("id") or "")


@transform
def primary_link(links: Any, field: str = "company_id", primary: str = "is_primary") -> Any:
    """The ``field`` (a company id) of a person's primary link among ``links`` (rows with ``field``,
    ``primary``, ``updated_at``, ``id``); when no link is primary, the most recently modified link's,
    :class:`Flagged`; several primaries: the most recently modified of them, flagged; no link: ``None``."""
    rows = [r for r in _rows(links) if not _empty(r.get(field))]
    if not rows:
        return None
    primaries = [r for r in rows if to_bool(r.get(primary) or False)]
    pick = max(primaries or rows, key=_link_key)
    value = str(pick[field])
    if len(primaries) == 1:
        return value
    if primaries:
        return Flagged(value, f"{len(primaries)} links are primary: the most recently modified one "
                              f"({field} {value}) is kept")
    return Flagged(value, f"none of {len(rows)} link(s) is primary: the most recently modified one "
                          f"({field} {value}, {pick.get('updated_at')}) is kept")


@transform
def other_links(links: Any, field: str = "company_id", primary: str = "is_primary") -> list[str]:
    """The ``field`` values of the links other than :func:`primary_link`'s, sorted (a many2many)."""
    main = primary_link(links, field=field, primary=primary)
    main = main.value if isinstance(main, Flagged) else main
    return sorted({str(r[field]) for r in _rows(links) if not _empty(r.get(field))} - {main}, key=str)


@transform
def if_equal(value: Any, kind: Any, equals: str = "") -> Any:
    """``value`` when ``kind`` is ``equals`` (``related.id`` when ``related.type`` is ``deal``), else ``None``."""
    return value if not _empty(value) and str(kind) == equals else None


_HTML_TAG_RE = re.compile(r"</?[a-zA-Z][a-zA-Z0-9]*(?:\s[^<>]*)?/?>")


def _is_html(value: Any) -> bool:
    return isinstance(value, str) and _HTML_TAG_RE.search(value) is not None


@transform
def html_or_text(value: Any) -> str | None:
    """A body given as HTML or as plain text (Link app's): with a tag in it, sanitised (:func:`html_clean`);
    else plain text shown as it is (:func:`html_text`)."""
    return html_clean(value) if _is_html(value) else html_text(value)


@transform
def activity_body(kind: Any, subject: Any = None, body: Any = None, seconds: Any = None) -> str | None:
    """The chatter body of a Link app activity of type ``kind``: an email's body; a note titled by its
    subject; a call or a done task as :func:`call_body` (subject, duration, then its text)."""
    kind = str(kind or "").strip().casefold()
    if kind == "email":
        return html_or_text(body)
    if kind in ("call", "task"):
        return call_body(subject, html_to_text(body) if _is_html(body) else body, seconds)
    return html_note(subject, body, body_is_html=_is_html(body))


# ---- deals ----------------------------------------------------------------------------------------------


def _rows(value: Any) -> list[Mapping[str, Any]]:
    if _empty(value):
        return []
    if isinstance(value, Mapping):          # Salesforce sub-query shape {totalSize, done, records}
        value = value.get("records") or []
    return [r for r in value if isinstance(r, Mapping)]


@transform
def stage_entered_at(history: Any, stage: Any = None, fallback: Any = None) -> str | None:
    """When the deal entered its current stage: the newest history row of that stage (``CreatedDate``),
    else ``fallback`` (``LastStageChangeDate``), as naive UTC."""
    best: datetime | None = None
    for row in _rows(history):
        if stage is not None and row.get("StageName") != stage:
            continue
        if (when := row.get("CreatedDate")) and not _empty(when):
            dt = _parse_dt(when)
            if best is None or dt > best:
                best = dt
    if best is not None:
        return _odoo_dt(best)
    return sf_datetime_to_odoo(fallback)


@transform
def html_stage_note(stage: Any, probability_: Any = None, amount: Any = None) -> str:
    """The body of a stage-history note: ``<p>Stage: <b>X</b> (probability 40%, amount 1,000.00)</p>``."""
    extra = []
    if not _empty(probability_):
        extra.append(f"probability {to_float(probability_):g}%")
    if not _empty(amount):
        extra.append(f"amount {to_float(amount):,.2f}")
    tail = f" ({', '.join(extra)})" if extra else ""
    return _html(f"<p>Stage: <b>{_esc(str(stage or '(none)'))}</b>{_esc(tail)}</p>") or ""


@transform
def call_body(subject: Any, description: Any = None, seconds: Any = None, call_type: Any = None,
              disposition: Any = None) -> str | None:
    """The chatter body of a done call/to-do: subject in bold, details (type, minutes, result), then the text."""
    details = []
    if not _empty(call_type):
        details.append(str(call_type).strip())
    if not _empty(seconds):
        details.append(f"{to_float(seconds) / 60:.0f} min")
    if not _empty(disposition):
        details.append(str(disposition).strip())
    head = _text(subject)
    line = (f"<b>{_esc(head)}</b>" if head else "") + (f" ({_esc(', '.join(details))})" if details else "")
    return _html((f"<p>{line}</p>" if line else "") + (html_text(description) or ""))


# ---- files ------------------------------------------------------------------------------------------------

MIMETYPES = {
    "pdf": "application/pdf", "txt": "text/plain", "csv": "text/csv", "png": "image/png", "jpg": "image/jpeg",
    "jpeg": "image/jpeg", "gif": "image/gif", "webp": "image/webp", "svg": "image/svg+xml", "html": "text/html",
    "htm": "text/html", "xml": "application/xml", "json": "application/json", "zip": "application/zip",
    "doc": "application/msword", "xls": "application/vnd.ms-excel", "ppt": "application/vnd.ms-powerpoint",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    "msg": "application/vnd.ms-outlook", "eml": "message/rfc822", "rtf": "application/rtf", "tif": "image/tiff",
    "tiff": "image/tiff", "mp4": "video/mp4", "mov": "video/quicktime", "mp3": "audio/mpeg", "snote": "text/html",
}


@transform
def mimetype(*candidates: Any) -> str:
    """A mimetype from a fixed table (never the host's ``mimetypes`` database, which differs between
    machines): the first candidate that is a content type (``image/png``) or a known extension or file
    name (``pdf``, ``Rent Roll.xlsx``); else ``application/octet-stream``. Odoo keeps a given mimetype."""
    for cand in candidates:
        if _empty(cand):
            continue
        raw = str(cand).strip()
        if re.fullmatch(r"[\w.+-]+/[\w.+-]+", raw):
            return raw.lower()
        ext = raw.rsplit(".", 1)[-1] if "." in raw else raw
        if found := MIMETYPES.get(ext.lower()):
            return found
    return "application/octet-stream"


@transform
def attachment_name(title: Any, extension: Any = None) -> str:
    """A file name: the title, with ``.ext`` added when it does not already end with it; never empty."""
    name = _text(title) or "(unnamed)"
    ext = _text(extension)
    if ext and not name.lower().endswith("." + ext.lower().lstrip(".")):
        name = f"{name}.{ext.lstrip('.')}"
    return name


@transform(name="base64")
def base64_(value: Any) -> str:
    """File bytes → base64 text as ``ir.attachment.datas`` takes it (text already in base64 is checked, kept)."""
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray | memoryview):
        return _b64.b64encode(bytes(value)).decode("ascii")
    raw = str(value).strip()
    try:
        _b64.b64decode(raw, validate=True)
    except ValueError:
        raise TransformError("file content is neither bytes nor base64 text") from None
    return raw


@transform
def sha1(value: Any) -> str | None:
    """The sha1 hex digest Odoo stores as ``ir.attachment.checksum`` (for the verify step)."""
    if value is None:
        return None
    raw = bytes(value) if isinstance(value, bytes | bytearray | memoryview) else _b64.b64decode(str(value))
    return hashlib.sha1(raw).hexdigest()  # noqa: S324 - Odoo's own checksum algorithm
