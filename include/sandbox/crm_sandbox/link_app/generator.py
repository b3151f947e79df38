"""Generate a deterministic Link app tenant: the same ``scale``, ``seed`` and ``as_of`` give the same tenant.

Dates are spread over the three years before ``as_of`` (default: today 00:00 UTC), so ids, names and
values never change with the day, only the dates move; pass ``as_of`` for a byte-identical tenant on
every day. Every generated ``updated_at`` lies before ``as_of``: a window starting at ``as_of`` holds
only what was changed later (``LinkAppTenant.mutate``). Every tenant, even at ``scale=1``, holds the
hard cases of :data:`HARD_CASES_DOC`; ``TenantData.hard_cases`` names their ids.

Ids are decimal strings counted per resource (``"1"``, ``"2"`` ...): the same id names a contact and a
company, as ids are unique per resource only.
"""

from __future__ import annotations

import random
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

RESOURCES = ("users", "companies", "contacts", "contact_companies", "pipelines", "deals", "activities",
             "attachments", "custom_fields", "automations")

#: The fields of each resource besides ``id``, ``created_at`` and ``updated_at`` (the spec's table).
FIELDS: dict[str, tuple[str, ...]] = {
    "users": ("name", "email", "active"),
    "companies": ("name", "website", "phone", "email", "address", "parent_company_id", "owner_id",
                  "custom_fields"),
    "contacts": ("first_name", "last_name", "email", "phone", "mobile", "title", "address", "owner_id",
                 "custom_fields"),
    "contact_companies": ("contact_id", "company_id", "is_primary"),
    "pipelines": ("name", "stages"),
    "deals": ("name", "pipeline_id", "stage_id", "amount", "currency", "priority", "expected_close_date",
              "status", "lost_reason", "company_id", "contact_id", "owner_id", "custom_fields",
              "stage_entered_at"),
    "activities": ("type", "subject", "body", "occurred_at", "start_at", "end_at", "due_date", "done",
                   "duration_seconds", "related", "author_id", "attendees"),
    "attachments": ("file_name", "content_type", "size_bytes", "related", "uploaded_at", "uploaded_by"),
    "custom_fields": ("object", "key", "label", "type", "options"),
    "automations": ("name", "trigger", "conditions", "actions", "active"),
}

HARD_CASES_DOC = """\
company_cycle: companies A->B->C->A (parent_company_id cycle); company_self_parent: its own parent;
company_hierarchy: root -> child -> grandchild; company_country_iso / company_country_name: addresses
with "DE" and "United Kingdom"; contact_multi_company: three links, one primary; contact_no_primary:
two links, both is_primary false; contact_without_company; same_updated_at: contacts sharing one
updated_at (ties ordered by id); users_matching_odoo / user_matches_odoo_admin / user_mixed_case /
users_unmatched / user_inactive / user_no_email: owners against the Odoo sandbox's users (see
``odoo_logins``); pipelines: two, with different stage names and won/lost stages; deal_won,
deal_lost (lost_reason), deal_open, deal_without_company, deal_by_priority; activity_<type>,
activity_task_open / activity_task_done, activity_on_<contact|company|deal>; attachment_empty,
attachment_non_ascii, attachment_missing (404), attachment_redirect (302); picklist_outside /
multiselect_outside: custom values outside their options; custom_field_undefined: a custom value
without a definition; deleted: ids in ``deleted`` (last 30 days); deleted_expired: deleted 45 days
before as_of (no longer served)."""

#: (name, email, active); emails at example.com match the Odoo sandbox's users (admin, or one made
#: with ``login@example.com``), the others match no Odoo user.
USERS = (
    ("Ada Admin", "admin@example.com", True),
    ("Sam Sales", "sam.sales@example.com", True),
    ("Priya Patel", "priya.patel@example.com", True),
    ("Jonas Weber", "jonas.weber@example.com", True),
    ("Lucía Gómez", "lucia.gomez@example.com", True),
    ("Kim Lee", "Kim.Lee@Example.com", True),
    ("Former Rep", "former.rep@old-linkapp-tenant.invalid", False),
    ("Partner Desk", "desk@partner-brokers.co.uk", True),
    ("Link Integration", None, True),
)
PIPELINES = (  # name, stages: (name, probability, is_won, is_closed)
    ("Sales", (("Qualification", 10, False, False), ("Discovery", 25, False, False),
               ("Proposal", 50, False, False), ("Negotiation", 75, False, False),
               ("Closed Won", 100, True, True), ("Closed Lost", 0, False, True))),
    ("Partnerships", (("Intro Call", 10, False, False), ("Evaluation", 30, False, False),
                      ("Contracting", 70, False, False), ("Signed", 100, True, True),
                      ("Rejected", 0, False, True), ("Parked", 5, False, False))),
)
CUSTOM_FIELDS = {  # object -> (key, label, type, options)
    "contact": (("lead_source", "Lead source", "picklist", ["Website", "Referral", "Trade Show", "Cold Call"]),
                ("interests", "Interests", "multiselect", ["Office", "Retail", "Industrial", "Residential"]),
                ("birthday", "Birthday", "date", None), ("linkedin", "LinkedIn", "url", None),
                ("newsletter", "Newsletter", "boolean", None), ("nps_score", "NPS score", "number", None),
                ("nickname", "Nickname", "text", None)),
    "company": (("industry", "Industry", "picklist", ["Real Estate", "Finance", "Technology", "Healthcare", "Retail"]),
                ("regions", "Regions", "multiselect", ["North America", "Europe", "APAC", "LATAM"]),
                ("founded", "Founded", "date", None), ("portal", "Customer portal", "url", None),
                ("is_partner", "Partner", "boolean", None), ("employees", "Employees", "number", None),
                ("tax_id", "Tax id", "text", None)),
    "deal": (("deal_type", "Deal type", "picklist", ["New Business", "Renewal", "Upsell"]),
             ("products", "Products", "multiselect", ["Platform", "Support", "Training", "Consulting"]),
             ("signed_on", "Signed on", "date", None), ("proposal_url", "Proposal", "url", None),
             ("is_strategic", "Strategic", "boolean", None), ("discount_pct", "Discount %", "number", None),
             ("notes_internal", "Internal notes", "text", None)),
}
PRIORITIES = ("low", "medium", "high", "urgent")
ACTIVITY_TYPES = ("call", "email", "note", "task", "meeting")
LOST_REASONS = ("Price too high", "Went with a competitor", "No budget this year", "Timing — revisit in Q3",
                "Stopped answering")
FIRST = ("James", "Maria", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Susan",
         "Daniel", "Sarah", "Thomas", "Karen", "José", "Zoë", "François", "Søren", "Björn", "Hiroshi", "Mei",
         "Aoife", "Łukasz", "Renée")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Martinez", "Wilson",
        "Anderson", "Taylor", "Moore", "Lee", "Müller", "O'Neil", "Nakamura", "van der Berg", "Dubois",
        "Kowalski", "D'Angelo", "Østergaard")
TITLES = ("CEO", "CFO", "Head of Operations", "Facilities Manager", "Procurement Lead", "Office Manager",
          "VP Real Estate", "Analyst", None)
CO_A = ("Summit", "Harbor", "Granite", "Pinnacle", "Cedar", "Beacon", "Meridian", "Crescent", "Keystone",
        "Sterling", "Riverbend", "Northgate", "Ironwood", "Lakeshore", "Redstone", "Oakmont", "Bayview")
CO_B = ("Logistics", "Software", "Partners", "Holdings", "Foods", "Health", "Retail", "Capital", "Labs",
        "Manufacturing", "Media")
CO_C = ("LLC", "Inc.", "Ltd", "GmbH", "SAS", "Group", "")
PLACES = (  # city, state, zip, ISO 3166 alpha-2, a name of the country
    ("New York", "NY", "10001", "US", "United States"), ("Chicago", "IL", "60601", "US", "USA"),
    ("Austin", "TX", "73301", "US", "United States"), ("Toronto", "ON", "M5H 2N2", "CA", "Canada"),
    ("München", "Bayern", "80331", "DE", "Germany"), ("Berlin", None, "10115", "DE", "Deutschland"),
    ("London", None, "EC1A 1BB", "GB", "United Kingdom"), ("Paris", None, "75001", "FR", "France"),
    ("Tokyo", "Tokyo", "100-0001", "JP", "Japan"), ("Madrid", None, "28001", "ES", "España"),
)
DOMAINS = ("acme.example", "mail.example", "corp.example")
STREETS = ("Main St", "Market Street", "Broadway", "Elm Ave", "5th Avenue", "Maximilianstraße", "Rue de Rivoli",
           "Calle Mayor", "King Street W")
FILES = (("Lease agreement.pdf", "application/pdf"), ("floorplan.png", "image/png"),
         ("Proposal v3.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
         ("pricing.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
         ("meeting-notes.txt", "text/plain"), ("contacts export.csv", "text/csv"), ("site photo.jpg", "image/jpeg"))
_MAGIC = {"application/pdf": b"%PDF-1.4\n", "image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff\xe0"}


def iso(ts: datetime) -> str:
    """``2024-03-05T14:02:11Z``: UTC, whole seconds (the API's timestamp format)."""
    return ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_ts(value: str) -> datetime:
    """An ISO 8601 timestamp with an offset (``Z`` or ``+hh:mm``), as an aware datetime; ValueError else."""
    ts = datetime.fromisoformat(value.strip())
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {value!r} has no UTC offset")
    return ts.astimezone(UTC)


def default_as_of() -> datetime:
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


@dataclass
class TenantData:
    """Everything the server serves: records per resource, file bytes, the delete log, the hard cases."""

    scale: int
    seed: int
    as_of: datetime
    tables: dict[str, dict[str, dict[str, Any]]]
    files: dict[str, bytes | None]             # attachment id -> bytes; None: missing on the CDN (404)
    redirects: set[str]                        # attachment ids whose download answers 302
    deleted: list[dict[str, str]]              # [{resource, id, deleted_at}]
    hard_cases: dict[str, Any]
    odoo_logins: list[str]                     # Odoo logins whose login@example.com matches an owner
    next_ids: dict[str, int] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables.items()}


class _Gen:
    def __init__(self, scale: int, seed: int, as_of: datetime) -> None:
        self.rnd = random.Random(seed)
        self.scale, self.seed, self.as_of = scale, seed, as_of
        self.start = as_of - timedelta(days=3 * 365)
        self.tables: dict[str, dict[str, dict[str, Any]]] = {r: {} for r in RESOURCES}
        self.next_ids = dict.fromkeys(RESOURCES, 1)
        self.files: dict[str, bytes | None] = {}
        self.redirects: set[str] = set()
        self.deleted: list[dict[str, str]] = []
        self.hard: dict[str, Any] = {}

    # ------------------------------------------------------------------------------------ helpers
    def ts(self, lo: datetime | None = None, hi: datetime | None = None) -> datetime:
        lo = lo or self.start
        hi = hi or (self.as_of - timedelta(hours=1))
        return lo + timedelta(seconds=self.rnd.randint(0, max(0, int((hi - lo).total_seconds()))))

    def add(self, resource: str, values: dict[str, Any], created: datetime | None = None,
            updated: datetime | None = None) -> dict[str, Any]:
        unknown = set(values) - set(FIELDS[resource])
        if unknown:
            raise KeyError(f"{resource} has no field {sorted(unknown)}")
        created = created or self.ts()
        if updated is None:
            updated = created if self.rnd.random() < 0.35 else self.ts(created)
        rid = str(self.next_ids[resource])
        self.next_ids[resource] += 1
        rec: dict[str, Any] = {"id": rid, **dict.fromkeys(FIELDS[resource]), **values,
                               "created_at": iso(created), "updated_at": iso(max(updated, created))}
        self.tables[resource][rid] = rec
        return rec

    def owner(self) -> str:
        """Most records belong to owners Odoo knows; some to owners it does not."""
        pool = self.matched if self.rnd.random() < 0.85 else self.unmatched
        return self.rnd.choice(pool)

    def address(self) -> dict[str, Any]:
        city, state, zip_code, code, name = self.rnd.choice(PLACES)
        return {"street": f"{self.rnd.randint(1, 999)} {self.rnd.choice(STREETS)}",
                "street2": self.rnd.choice((None, None, "Suite 200", "3rd floor", "c/o Reception")),
                "city": city, "state": state, "zip": zip_code, "country": code if self.rnd.random() < 0.5 else name}

    def date(self, lo: datetime, hi: datetime) -> str:
        return self.ts(lo, hi).date().isoformat()

    def custom_value(self, kind: str, options: list[str] | None) -> Any:
        r = self.rnd
        if r.random() < 0.05:
            return None
        if kind == "text":
            return r.choice(("Key account", "Prefers email", "Met at the 2022 expo", "Übergabe im März", "—"))
        if kind == "number":
            return r.choice((r.randint(0, 5000), round(r.uniform(0, 100), 2)))
        if kind == "date":
            return self.date(self.start - timedelta(days=20 * 365), self.as_of)
        if kind == "picklist":
            return r.choice(options or [""])
        if kind == "multiselect":
            return sorted(r.sample(options or [], k=r.randint(1, 2)))
        if kind == "url":
            return f"https://portal.example.org/{r.randint(1000, 9999)}"
        return r.random() < 0.5

    def custom_values(self, obj: str) -> dict[str, Any]:
        return {key: self.custom_value(kind, options) for key, _label, kind, options in CUSTOM_FIELDS[obj]
                if self.rnd.random() < 0.7}

    def blob(self, size: int, content_type: str) -> bytes:
        if size == 0:
            return b""
        head = _MAGIC.get(content_type, b"")
        if content_type.startswith("text/"):
            line = "id,name,note\n1,Zoë Müller,\"a, quoted\"\n".encode()
            return (line * (size // len(line) + 1))[:size]
        return (head + self.rnd.randbytes(size))[:size]

    # ------------------------------------------------------------------------------------- tenant
    def run(self) -> TenantData:
        self.gen_users()
        self.gen_custom_fields()
        self.gen_pipelines()
        self.gen_companies()
        self.gen_contacts()
        self.gen_deals()
        self.gen_activities()
        self.gen_attachments()
        self.gen_automations()
        self.gen_deletions()
        return TenantData(self.scale, self.seed, self.as_of, self.tables, self.files, self.redirects,
                          self.deleted, self.hard, self.odoo_logins, dict(self.next_ids))

    def gen_users(self) -> None:
        specs = list(USERS) + [(f"Rep {n}", f"rep{n}@example.com", n % 4 != 0) for n in range(2, self.scale + 1)]
        t0 = self.start - timedelta(days=400)
        self.matched: list[str] = []
        self.unmatched: list[str] = []
        self.odoo_logins: list[str] = []
        for name, email, active in specs:
            rec = self.add("users", {"name": name, "email": email, "active": active}, t0, self.ts(t0, self.start))
            if email and email.lower().endswith("@example.com"):
                self.matched.append(rec["id"])
                login = email.lower().split("@")[0]
                if login != "admin":                    # admin always exists in the Odoo sandbox
                    self.odoo_logins.append(login)
            else:
                self.unmatched.append(rec["id"])
        users = self.tables["users"]
        self.hard["user_matches_odoo_admin"] = next(u for u in self.matched if users[u]["email"] == "admin@example.com")
        self.hard["users_matching_odoo"] = list(self.matched)
        self.hard["user_mixed_case"] = next(u for u in self.matched if users[u]["email"] != users[u]["email"].lower())
        self.hard["users_unmatched"] = list(self.unmatched)
        self.hard["user_inactive"] = [u for u, r in users.items() if not r["active"]]
        self.hard["user_no_email"] = next(u for u, r in users.items() if r["email"] is None)

    def gen_custom_fields(self) -> None:
        t0 = self.start - timedelta(days=200)
        self.cf_defs: dict[str, dict[str, dict[str, Any]]] = {}
        for obj, defs in CUSTOM_FIELDS.items():
            for key, label, kind, options in defs:
                rec = self.add("custom_fields", {"object": obj, "key": key, "label": label, "type": kind,
                                                 "options": list(options) if options else None}, t0)
                self.cf_defs.setdefault(obj, {})[key] = rec

    def gen_pipelines(self) -> None:
        t0 = self.start - timedelta(days=300)
        self.stages: dict[str, list[dict[str, Any]]] = {}
        for p, (name, stages) in enumerate(PIPELINES, start=1):
            rows = [{"id": str(100 * p + n), "name": s, "order": n, "probability": prob, "is_won": won,
                     "is_closed": closed} for n, (s, prob, won, closed) in enumerate(stages, start=1)]
            rec = self.add("pipelines", {"name": name, "stages": rows}, t0)
            self.stages[rec["id"]] = rows
        self.hard["pipelines"] = {pid: self.tables["pipelines"][pid]["name"] for pid in self.stages}

    def company(self, name: str, parent: str | None = None, country: str | None = None) -> dict[str, Any]:
        slug = "".join(ch for ch in name.lower() if ch.isascii() and ch.isalnum())[:20] or "company"
        address = self.address()
        if country:
            address["country"] = country
        return self.add("companies", {
            "name": name, "website": f"https://www.{slug}.example", "phone": f"+1 212 555 {self.rnd.randint(0, 9999):04d}",
            "email": self.rnd.choice((f"info@{slug}.example", None)), "address": address,
            "parent_company_id": parent, "owner_id": self.owner(), "custom_fields": self.custom_values("company")})

    def gen_companies(self) -> None:
        cycle = [self.company(f"Cycle Holdings {x}") for x in "ABC"]
        for a, b in zip(cycle, cycle[1:] + cycle[:1], strict=True):
            a["parent_company_id"] = b["id"]
        selfp = self.company("Selfparent Realty LLC")
        selfp["parent_company_id"] = selfp["id"]
        root = self.company("Atlas Group")
        child = self.company("Atlas Europe GmbH", root["id"])
        grandchild = self.company("Atlas München Büro", child["id"])
        iso_country = self.company("Müller & Söhne GmbH", country="DE")
        named = self.company('O\'Brien "Quoted" Partners', country="United Kingdom")
        outside = self.company("Skyward Aerospace Inc.")
        outside["custom_fields"]["industry"] = "Aerospace"
        self.hard.update({
            "company_cycle": [c["id"] for c in cycle], "company_self_parent": selfp["id"],
            "company_hierarchy": [root["id"], child["id"], grandchild["id"]],
            "company_country_iso": iso_country["id"], "company_country_name": named["id"],
            "picklist_outside": {"companies": {outside["id"]: {"industry": "Aerospace"}}}})
        first_plain = len(self.tables["companies"]) + 1
        for i in range(40 * self.scale - len(self.tables["companies"])):
            name = " ".join(x for x in (self.rnd.choice(CO_A), self.rnd.choice(CO_B), self.rnd.choice(CO_C)) if x)
            parent = None
            if i > 3 and self.rnd.random() < 0.15:       # a plain tree: parents among earlier plain companies
                parent = str(self.rnd.randint(first_plain, first_plain + i - 1))
            self.company(name, parent)
        self.company_ids = list(self.tables["companies"])

    def link(self, contact: dict[str, Any], company_id: str, primary: bool) -> None:
        c = datetime.fromisoformat(contact["created_at"])
        self.add("contact_companies", {"contact_id": contact["id"], "company_id": company_id,
                                       "is_primary": primary}, self.ts(c, c + timedelta(days=30)))

    def contact(self) -> dict[str, Any]:
        r = self.rnd
        first, last = r.choice(FIRST), r.choice(LAST)
        ascii_name = unicodedata.normalize("NFKD", f"{first}.{last}".lower()).encode("ascii", "ignore").decode()
        local = "".join(ch for ch in ascii_name if ch.isalnum() or ch == ".")
        return self.add("contacts", {
            "first_name": first, "last_name": last,
            "email": None if r.random() < 0.08 else f"{local}{r.randint(1, 99)}@{r.choice(DOMAINS)}",
            "phone": f"+1 646 555 {r.randint(0, 9999):04d}", "mobile": r.choice((None, f"+44 7700 900{r.randint(100, 999)}")),
            "title": r.choice(TITLES), "address": self.address() if r.random() < 0.95 else None,
            "owner_id": self.owner(), "custom_fields": self.custom_values("contact")})

    def gen_contacts(self) -> None:
        r = self.rnd
        contacts = [self.contact() for _ in range(120 * self.scale)]
        multi, no_primary, lonely = contacts[3], contacts[4], contacts[5]
        for n, cid in enumerate(r.sample(self.company_ids, 3)):
            self.link(multi, cid, n == 1)
        for cid in r.sample(self.company_ids, 2):
            self.link(no_primary, cid, False)
        for c in contacts[6:]:
            k = r.choices((0, 1, 2), weights=(5, 85, 10))[0]
            for n, cid in enumerate(r.sample(self.company_ids, k)):
                self.link(c, cid, n == 0)
        contacts[0]["custom_fields"]["lead_source"] = "Trade Show 2019"
        contacts[1]["custom_fields"]["interests"] = ["Hospitality", "Office"]
        contacts[2]["custom_fields"]["legacy_score"] = 42
        tie = iso(self.ts(self.start + timedelta(days=400), self.start + timedelta(days=800)))
        for c in contacts[10:16]:
            c["created_at"] = min(c["created_at"], tie)
            c["updated_at"] = tie
        self.hard.update({
            "contact_multi_company": multi["id"], "contact_no_primary": no_primary["id"],
            "contact_without_company": lonely["id"],
            "multiselect_outside": {"contacts": {contacts[1]["id"]: {"interests": "Hospitality"}}},
            "custom_field_undefined": {"contacts": {contacts[2]["id"]: "legacy_score"}},
            "same_updated_at": {"resource": "contacts", "updated_at": tie, "ids": [c["id"] for c in contacts[10:16]]}})
        self.hard["picklist_outside"]["contacts"] = {contacts[0]["id"]: {"lead_source": "Trade Show 2019"}}
        self.contact_ids = [c["id"] for c in contacts]
        self.contacts_of: dict[str, list[str]] = {}
        for link in self.tables["contact_companies"].values():
            self.contacts_of.setdefault(link["company_id"], []).append(link["contact_id"])

    def deal(self, status: str, pipeline_id: str, priority: str, with_company: bool = True) -> dict[str, Any]:
        r = self.rnd
        stages = self.stages[pipeline_id]
        if status == "won":
            stage = next(s for s in stages if s["is_won"])
        elif status == "lost":
            stage = next(s for s in stages if s["is_closed"] and not s["is_won"])
        else:
            stage = r.choice([s for s in stages if not s["is_closed"]])
        company_id = r.choice(self.company_ids) if with_company else None
        people = self.contacts_of.get(company_id or "", []) or self.contact_ids
        contact_id = r.choice(people) if with_company else None
        currency = r.choices(("USD", "EUR", "GBP", "JPY"), weights=(60, 20, 15, 5))[0]
        amount: float | int | None = r.randint(100_000, 50_000_000) if currency == "JPY" else round(r.uniform(1000, 500_000), 2)
        if r.random() < 0.03:
            amount = None
        created = self.ts()
        updated = self.ts(created)
        company = self.tables["companies"][company_id]["name"] if company_id else "Walk-in"
        return self.add("deals", {
            "name": f"{company} — {r.choice(('Office expansion', 'Renewal', 'New HQ', 'Pilot', 'Upsell'))}",
            "pipeline_id": pipeline_id, "stage_id": stage["id"], "amount": amount, "currency": currency,
            "priority": priority, "expected_close_date": self.date(created, self.as_of + timedelta(days=180)),
            "status": status, "lost_reason": r.choice(LOST_REASONS) if status == "lost" else None,
            "company_id": company_id, "contact_id": contact_id, "owner_id": self.owner(),
            "custom_fields": self.custom_values("deal"), "stage_entered_at": iso(self.ts(created, updated))},
            created, updated)

    def gen_deals(self) -> None:
        r = self.rnd
        sales, partners = list(self.stages)
        fixed = [self.deal("won", sales, "high"), self.deal("lost", sales, "medium"), self.deal("open", sales, "urgent"),
                 self.deal("won", partners, "low"), self.deal("lost", partners, "urgent"),
                 self.deal("open", partners, "low", with_company=False)]
        for i in range(80 * self.scale - len(fixed)):
            status = r.choices(("open", "won", "lost"), weights=(55, 25, 20))[0]
            self.deal(status, r.choice((sales, partners)), PRIORITIES[i % 4])
        fixed[0]["custom_fields"]["deal_type"] = "Legacy Migration"
        self.hard["picklist_outside"]["deals"] = {fixed[0]["id"]: {"deal_type": "Legacy Migration"}}
        deals = self.tables["deals"]
        self.hard.update({
            "deal_won": [fixed[0]["id"], fixed[3]["id"]], "deal_lost": [fixed[1]["id"], fixed[4]["id"]],
            "deal_open": [fixed[2]["id"], fixed[5]["id"]], "deal_without_company": fixed[5]["id"],
            "deal_by_priority": {p: next(d for d, rec in deals.items() if rec["priority"] == p) for p in PRIORITIES}})
        self.deal_ids = list(deals)

    def related(self, kind: str | None = None) -> dict[str, str]:
        kind = kind or self.rnd.choices(("contact", "company", "deal"), weights=(50, 25, 25))[0]
        pool = {"contact": self.contact_ids, "company": self.company_ids, "deal": self.deal_ids}[kind]
        return {"type": kind, "id": self.rnd.choice(pool)}

    def activity(self, kind: str, related: dict[str, str] | None = None, done: bool | None = None) -> dict[str, Any]:
        r = self.rnd
        rel = related or self.related()
        when = self.ts(self.start, self.as_of - timedelta(days=1))
        created = when + timedelta(minutes=r.randint(0, 90))
        values: dict[str, Any] = {"type": kind, "related": rel, "author_id": self.owner()}
        who = r.choice(FIRST)
        if kind == "call":
            values.update(subject=f"Call with {who}", body=r.choice(("Left a voicemail.", "Discussed renewal terms; "
                          "send pricing by Friday.", "Kurzes Gespräch über die Büroflächen.")),
                          occurred_at=iso(when), duration_seconds=r.choice((0, r.randint(30, 3600))))
        elif kind == "email":
            values.update(subject=r.choice(("Re: Proposal", "Intro", "Follow-up: site visit", "Fwd: contract draft")),
                          body=f"<p>Hi {who},</p><p>Thanks for your time &amp; the tour.</p><p>Best,<br>Ada</p>",
                          occurred_at=iso(when))
        elif kind == "note":
            values.update(subject=r.choice((None, "Note")), occurred_at=iso(when), body=r.choice((
                "Prefers calls after 3pm.", "<ul><li>Budget approved</li><li>Decision in Q2</li></ul>",
                "Café meeting — très positif.")))
        elif kind == "task":
            done = r.random() < 0.5 if done is None else done
            due = self.ts(when, self.as_of + timedelta(days=30)) if not done else when + timedelta(days=r.randint(1, 14))
            values.update(subject=r.choice(("Send contract", "Follow up on proposal", "Book site visit")),
                          body=r.choice((None, "Ask for the signed LOI.")), due_date=due.date().isoformat(), done=done)
        else:
            end = when + timedelta(minutes=r.choice((30, 45, 60, 120)))
            values.update(subject=r.choice(("Site visit", "Quarterly review", "Kick-off")),
                          body="<p>Agenda: space plan, timeline, budget.</p>", start_at=iso(when), end_at=iso(end),
                          attendees=r.sample(self.contact_ids, r.randint(1, 3)))
            created = min(created, when - timedelta(days=r.randint(0, 10)))
        return self.add("activities", values, created, created if r.random() < 0.5 else self.ts(created))

    def gen_activities(self) -> None:
        r = self.rnd
        fixed = {f"activity_{t}": self.activity(t) for t in ACTIVITY_TYPES}
        fixed["activity_task_open"] = self.activity("task", done=False)
        fixed["activity_task_done"] = self.activity("task", done=True)
        fixed["activity_meeting"]["attendees"] = r.sample(self.contact_ids, 3)
        for kind in ("contact", "company", "deal"):
            fixed[f"activity_on_{kind}"] = self.activity(r.choice(ACTIVITY_TYPES), self.related(kind))
        for _ in range(400 * self.scale - len(fixed)):
            self.activity(r.choices(ACTIVITY_TYPES, weights=(25, 25, 20, 15, 15))[0])
        self.hard.update({k: v["id"] for k, v in fixed.items()})

    def attachment(self, name: str, content_type: str, size: int) -> dict[str, Any]:
        uploaded = self.ts()
        rec = self.add("attachments", {"file_name": name, "content_type": content_type, "size_bytes": size,
                                       "related": self.related(), "uploaded_at": iso(uploaded),
                                       "uploaded_by": self.owner()}, uploaded)
        self.files[rec["id"]] = self.blob(size, content_type)
        return rec

    def gen_attachments(self) -> None:
        r = self.rnd
        empty = self.attachment("empty.txt", "text/plain", 0)
        non_ascii = self.attachment("Exposé Büro 東京.pdf", "application/pdf", 1536)
        missing = self.attachment("scan-2019.pdf", "application/pdf", 2048)
        moved = self.attachment("floorplan redirect.png", "image/png", 900)
        self.files[missing["id"]] = None
        self.redirects.add(moved["id"])
        for i in range(30 * self.scale - 4):
            name, ctype = r.choice(FILES)
            rec = self.attachment(name, ctype, r.randint(64, 4096))
            if i % 5 == 4:
                self.redirects.add(rec["id"])
        self.hard.update({"attachment_empty": empty["id"], "attachment_non_ascii": non_ascii["id"],
                          "attachment_missing": missing["id"], "attachment_redirect": sorted(self.redirects, key=int)})

    def gen_automations(self) -> None:
        t0 = self.start - timedelta(days=100)
        sales = next(iter(self.stages))
        won = next(s["id"] for s in self.stages[sales] if s["is_won"])
        for name, trigger, conditions, actions, active in (
            ("Assign website leads round-robin", {"event": "contact.created"},
             [{"field": "custom_fields.lead_source", "op": "eq", "value": "Website"}],
             [{"type": "assign_owner", "strategy": "round_robin", "user_ids": self.matched[:3]}], True),
            ("Alert on large deals", {"event": "deal.updated", "fields": ["amount"]},
             [{"field": "amount", "op": "gt", "value": 250000}],
             [{"type": "send_email", "to": "owner", "template": "large-deal"}], True),
            ("Follow-up task after meetings", {"event": "activity.created"},
             [{"field": "type", "op": "eq", "value": "meeting"}],
             [{"type": "create_task", "subject": "Send meeting recap", "due_in_days": 2}], True),
            ("Won deal webhook", {"event": "deal.stage_changed", "pipeline_id": sales},
             [{"field": "stage_id", "op": "eq", "value": won}],
             [{"type": "webhook", "url": "https://hooks.example.org/won", "method": "POST"}], True),
            ("Demote stale deals", {"schedule": "0 6 * * *"},
             [{"field": "updated_at", "op": "older_than_days", "value": 60}, {"field": "status", "op": "eq", "value": "open"}],
             [{"type": "set_field", "field": "priority", "value": "low"}], False),
        ):
            self.add("automations", {"name": name, "trigger": trigger, "conditions": conditions, "actions": actions,
                                     "active": active}, t0)

    def gen_deletions(self) -> None:
        """Records created and deleted since: in ``deleted``, gone from listings (one deleted 45 days ago)."""
        made: dict[str, list[str]] = {}
        for resource, count, make in (("companies", 2, lambda: self.company("Gone Away Ltd")),
                                      ("contacts", 3, self.contact), ("deals", 2, lambda: self.deal("open", next(iter(self.stages)), "low")),
                                      ("activities", 5, lambda: self.activity("note"))):
            for _ in range(count * self.scale):
                rec = make()
                when = self.ts(self.as_of - timedelta(days=20), self.as_of - timedelta(hours=1))
                self.delete(resource, rec, when)
                made.setdefault(resource, []).append(rec["id"])
        expired = self.contact()
        self.delete("contacts", expired, self.as_of - timedelta(days=45))
        self.deleted.sort(key=lambda d: (d["deleted_at"], d["resource"], d["id"]))
        self.hard["deleted"] = made
        self.hard["deleted_expired"] = {"contacts": [expired["id"]]}

    def delete(self, resource: str, rec: dict[str, Any], when: datetime) -> None:
        del self.tables[resource][rec["id"]]
        self.deleted.append({"resource": resource, "id": rec["id"], "deleted_at": iso(when)})


#: the tenant profiles: ``default``, and ``variant``, a tenant whose fields differ (see :func:`_variant`)
PROFILES = ("default", "variant")


def generate_tenant(scale: int = 1, seed: int = 7, as_of: datetime | None = None,
                    profile: str = "default") -> TenantData:
    """Generate the tenant for ``(scale, seed, as_of, profile)``; ``as_of`` defaults to today 00:00 UTC."""
    if scale < 1:
        raise ValueError(f"scale must be >= 1, got {scale}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}")
    as_of = (as_of or default_as_of()).astimezone(UTC).replace(microsecond=0)
    data = _Gen(scale, seed, as_of).run()
    if profile == "variant":
        _variant(data, random.Random(seed * 31 + 2))
    return data


def _variant(data: TenantData, rnd: random.Random) -> None:
    """A tenant whose fields differ from the default profile (``hard_cases["variant"]`` names them): a contact's
    ``title`` is ``job_title`` (a renamed field), two more custom field definitions (a company's ``account_tier``
    picklist, a deal's ``renewal_date``), and a custom value no definition names (a deal's ``legacy_region``).
    The tenant's mutations still take ``title`` (the default field list)."""
    for rec in data.tables["contacts"].values():
        rec["job_title"] = rec.pop("title", None)
    defs = data.tables["custom_fields"]
    first = next(iter(defs.values()))
    for obj, key, label, kind, options in (("company", "account_tier", "Account tier", "picklist",
                                            ["Gold", "Silver", "Bronze"]),
                                           ("deal", "renewal_date", "Renewal date", "date", None)):
        rid = str(data.next_ids["custom_fields"])
        data.next_ids["custom_fields"] += 1
        defs[rid] = {**first, "id": rid, "object": obj, "key": key, "label": label, "type": kind, "options": options}
    for rec in data.tables["companies"].values():
        if rnd.random() < 0.7:
            rec["custom_fields"]["account_tier"] = rnd.choice(("Gold", "Silver", "Bronze", "Platinum"))
    for rec in data.tables["deals"].values():
        if rnd.random() < 0.6:
            rec["custom_fields"]["renewal_date"] = f"2026-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        if rnd.random() < 0.3:
            rec["custom_fields"]["legacy_region"] = rnd.choice(("EMEA", "AMER", "APAC"))
    data.hard_cases["variant"] = {"renamed": {"contacts.title": "contacts.job_title"},
                                  "new_definitions": ["companies.custom_fields.account_tier",
                                                      "deals.custom_fields.renewal_date"],
                                  "undefined": ["deals.custom_fields.legacy_region"]}
