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
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from datetime import date as _date
from html.parser import HTMLParser
from typing import Any, NamedTuple, TypeVar

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


def _esc(text_: str) -> str:
    # lxml (Odoo's sanitiser) escapes &, < and > in text, never quotes
    return html.escape(text_, quote=False)


def _paragraphs(text_: str) -> str:
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", text_) if b.strip()]
    return "".join("<p>" + "<br>".join(_esc(line) for line in block.split("\n")) + "</p>" for block in blocks)


@transform
def html_text(*parts: Any) -> str | None:
    """Plain text → safe html: escaped, blank lines → paragraphs, newlines → ``<br>``.

    Several parts become consecutive paragraphs (empty ones skipped); nothing → ``None``.
    """
    out = "".join(_paragraphs(t) for p in parts if (t := _text(p)) is not None)
    return out or None


@transform
def html_note(title: Any, *body: Any, body_is_html: bool = False) -> str | None:
    """A titled note: ``<p><b>title</b></p>`` then the body as :func:`html_text` (or :func:`html_clean`
    when ``body_is_html``)."""
    head = _text(title)
    rest = "".join(html_clean(b) or "" for b in body) if body_is_html else (html_text(*body) or "")
    out = (f"<p><b>{_esc(head)}</b></p>" if head else "") + rest
    return out or None


@transform
def html_fields(*values: Any, labels: Sequence[str] = ()) -> str | None:
    """One ``<p><b>label</b>: value</p>`` per non-empty value (labels in order)."""
    out = []
    for label, value in zip(labels, values, strict=False):
        if (t := _text(value)) is not None:
            out.append(f"<p><b>{_esc(label)}</b>: {_esc(t)}</p>")
    return "".join(out) or None


_SAFE_TAGS = frozenset({"p", "br", "b", "strong", "i", "em", "u", "s", "ul", "ol", "li", "blockquote",
                        "h1", "h2", "h3", "h4", "pre", "code", "span", "div"})


class _Cleaner(HTMLParser):
    """Keep :data:`_SAFE_TAGS` without attributes, drop scripts/styles with their content, escape text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self.skip += 1
        elif not self.skip and tag in _SAFE_TAGS:
            self.out.append("<br>" if tag == "br" else f"<{tag}>")

    def handle_startendtag(self, tag: str, attrs: Any) -> None:
        if not self.skip and tag == "br":
            self.out.append("<br>")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skip = max(0, self.skip - 1)
        elif not self.skip and tag in _SAFE_TAGS and tag != "br":
            self.out.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.out.append(_esc(data))


@transform
def html_clean(value: Any) -> str | None:
    """Rich text from the source (ContentNote) reduced to tags Odoo keeps as is, attributes dropped.

    Scripts and styles are dropped with their content; unknown tags are unwrapped; text is escaped
    the way Odoo's sanitiser serialises it, so the stored body equals what we send.
    """
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    src = _text(value)
    if src is None:
        return None
    parser = _Cleaner()
    parser.feed(src)
    parser.close()
    body = "".join(parser.out).strip()
    if body and not body.startswith("<"):
        body = f"<p>{body}</p>"
    return body or None


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
def deal_probability(value: Any, is_closed: Any = False, is_won: Any = False) -> float:
    """Odoo's rule for a deal: won → 100, lost (closed, not won) → 0, else the source probability."""
    if to_bool(is_won or False):
        return 100.0
    if to_bool(is_closed or False):
        return 0.0
    return probability(value)


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
    return f"<p>Stage: <b>{_esc(str(stage or '(none)'))}</b>{_esc(tail)}</p>"


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
    out = (f"<p>{line}</p>" if line else "") + (html_text(description) or "")
    return out or None


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
