"""Generate a deterministic Apto org: same ``seed`` and ``scale`` give the same records and ids.

Dates are spread over the five years before ``as_of`` (default: today 00:00 UTC), so ids, names,
counts and values never change with the day, and only the dates move; pass ``as_of`` for a
byte-identical org on every day. Every org, even at ``scale=1``, holds the hard cases listed in
:data:`HARD_CASES_DOC`; ``OrgData.hard_cases`` names their ids.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from . import schema as S
from .ids import IdFactory, make_id
from .soql import format_datetime

HARD_CASES_DOC = """\
account_cycle: three accounts A->B->C->A (ParentId cycle); account_self_parent: ParentId = own Id;
contact_multi_account: contacts with several AccountContactRelation rows (one IsDirect);
user_unmatched / user_mixed_case / user_inactive: owners whose email matches no Odoo user, mixed-case
emails (one equal to Odoo's admin@example.com but for case), inactive users; pipelines: two
Opportunity record types with different stages; opportunity_won / opportunity_lost (with
<ns>__Loss_Reason__c); picklist_outside: records holding values outside their picklist; deleted_*:
records in the recycle bin; file_empty / file_non_ascii; file_missing / attachment_missing: a file and an
attachment whose bytes are gone (their download answers 404 NOT_FOUND); task_email / task_call / task_open /
event_future."""

FIRST = ("James", "Maria", "Robert", "Jennifer", "Michael", "Linda", "David", "Elizabeth", "William", "Susan",
         "Richard", "Jessica", "Joseph", "Sarah", "Thomas", "Karen", "Charles", "Nancy", "Christopher", "Lisa",
         "Daniel", "Betty", "Matthew", "Margaret", "Anthony", "Sandra", "José", "Zoë", "François", "Søren",
         "Björn", "Hiroshi", "Mei", "Aoife", "Łukasz", "Renée")
LAST = ("Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Rodriguez", "Martinez",
        "Hernandez", "Lopez", "Gonzalez", "Wilson", "Anderson", "Thomas", "Taylor", "Moore", "Jackson", "Martin",
        "Lee", "Perez", "Thompson", "White", "Harris", "Sanchez", "Clark", "Müller", "O'Neil", "Nakamura",
        "van der Berg", "Dubois", "Kowalski", "D'Angelo", "Østergaard", "Yamamoto")
CO_A = ("Summit", "Harbor", "Granite", "Pinnacle", "Cedar", "Beacon", "Meridian", "Crescent", "Keystone",
        "Sterling", "Atlas", "Riverbend", "Northgate", "Ironwood", "Lakeshore", "Redstone", "Silverline",
        "Oakmont", "Bayview", "Highpoint")
CO_B = ("Realty", "Properties", "Capital", "Partners", "Holdings", "Investments", "Development", "Asset Management",
        "Ventures", "Equities", "Land Co", "REIT")
CO_C = ("LLC", "Inc.", "LP", "Group", "Corp.", "Trust", "")
CITIES = (("New York", "NY", "10001", "United States"), ("Chicago", "IL", "60601", "United States"),
          ("Austin", "TX", "73301", "United States"), ("Denver", "CO", "80202", "United States"),
          ("Miami", "FL", "33101", "United States"), ("Seattle", "WA", "98101", "United States"),
          ("Boston", "MA", "02108", "USA"), ("Atlanta", "GA", "30301", "US"), ("Toronto", "ON", "M5H 2N2", "Canada"),
          ("München", "Bavaria", "80331", "Germany"), ("London", None, "EC1A 1BB", "United Kingdom"),
          ("Tokyo", "Tokyo", "100-0001", "Japan"), ("Phoenix", "AZ", "85001", "United States"))
STREETS = ("Main St", "Market Street", "Broadway", "Elm Ave", "5th Avenue", "Commerce Dr", "Harbor Blvd",
           "Industrial Pkwy", "Maximilianstraße", "Oak Lane")

BROKERAGE_STAGES = (("Prospecting", 10, False, False), ("Pitching", 20, False, False),
                    ("Listing Signed", 40, False, False), ("Marketing", 60, False, False),
                    ("Under Contract", 80, False, False), ("Closed Won", 100, True, True),
                    ("Closed Lost", 0, True, False))
LEASING_STAGES = (("Tour Scheduled", 10, False, False), ("Proposal Sent", 30, False, False),
                  ("LOI Negotiation", 50, False, False), ("Lease Drafting", 75, False, False),
                  ("Lease Signed", 100, True, True), ("Dead", 0, True, False))
INACTIVE_STAGE = ("Legacy - On Hold", 5, False, False)


def stage_names() -> list[str]:
    return [s[0] for s in (*BROKERAGE_STAGES, *LEASING_STAGES, INACTIVE_STAGE)]


@dataclass
class OrgData:
    """Everything the server serves: tables (object → id → record), blobs, the delete log."""

    namespace: str
    scale: int
    seed: int
    as_of: datetime
    tables: dict[str, dict[str, dict[str, Any]]]
    tooling: dict[str, dict[str, dict[str, Any]]]
    blobs: dict[str, bytes]                      # ContentVersion / Attachment / ContentNote id → bytes
    deleted_log: dict[str, list[tuple[str, str]]]  # object → [(id, deletedDate)]
    record_types: list[dict[str, Any]]
    pipelines: dict[str, list[str]]              # record type id → its StageName values, in order
    hard_cases: dict[str, Any]
    ids: IdFactory
    org_id: str
    schema: dict[str, S.ObjectDef] = field(default_factory=dict)
    tooling_schema: dict[str, S.ObjectDef] = field(default_factory=dict)
    missing_blobs: set[str] = field(default_factory=set)   # blob ids whose download answers 404 NOT_FOUND

    def counts(self) -> dict[str, int]:
        return {name: len(rows) for name, rows in self.tables.items()}


class _Gen:
    def __init__(self, scale: int, seed: int, ns: str, as_of: datetime) -> None:
        self.rnd = random.Random(seed)
        self.scale, self.seed, self.ns = scale, seed, ns
        self.p = f"{ns}__" if ns else ""
        self.as_of = as_of
        self.ids = IdFactory(salt=seed)
        self.schema = S.build_schema(ns, stage_names(), [INACTIVE_STAGE[0]])
        self.tables: dict[str, dict[str, dict[str, Any]]] = {name: {} for name in self.schema}
        self.blobs: dict[str, bytes] = {}
        self.deleted_log: dict[str, list[tuple[str, str]]] = {}
        self.hard: dict[str, Any] = {}
        self.start = as_of - timedelta(days=5 * 365)

    # helpers
    def ts(self, lo: datetime | None = None, hi: datetime | None = None) -> datetime:
        lo = lo or self.start
        hi = hi or (self.as_of - timedelta(hours=2))
        span = max(0, int((hi - lo).total_seconds()))
        return lo + timedelta(seconds=self.rnd.randint(0, span))

    def add(self, obj: str, values: dict[str, Any], created: datetime | None = None,
            modified: datetime | None = None, owner: str | None = None) -> dict[str, Any]:
        odef = self.schema[obj]
        rec: dict[str, Any] = dict.fromkeys(odef.field_names())
        rid = values.pop("Id", None) or self.ids.new(odef.key_prefix)
        created = created or self.ts()
        if modified is None:
            modified = created if self.rnd.random() < 0.4 else self.ts(created)
        modified = max(modified, created)
        creator = self.users[0] if getattr(self, "users", None) else None
        rec.update({"Id": rid, "IsDeleted": False, "CreatedDate": format_datetime(created),
                    "CreatedById": creator, "LastModifiedDate": format_datetime(modified),
                    "LastModifiedById": creator, "SystemModstamp": format_datetime(modified)})
        if odef.has("OwnerId"):
            rec["OwnerId"] = owner or (self.owner() if getattr(self, "users", None) else None)
        for k in ("IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate", "LastModifiedById", "SystemModstamp"):
            if not odef.has(k):
                del rec[k]
        unknown = [k for k in values if not odef.has(k)]
        if unknown:
            raise KeyError(f"{obj} has no field {unknown}")
        rec.update(values)
        self.tables[obj][rid] = rec
        return rec

    def owner(self) -> str:
        # inactive and unmatched owners own records too
        return self.rnd.choice(self.users)

    def maybe(self, p: float, value: Any) -> Any:
        return value if self.rnd.random() < p else None

    def delete(self, obj: str, rec: dict[str, Any]) -> None:
        when = format_datetime(self.ts(self.as_of - timedelta(days=10), self.as_of - timedelta(hours=3)))
        rec.update({"IsDeleted": True, "SystemModstamp": when})
        if "LastModifiedDate" in rec:
            rec["LastModifiedDate"] = when
        self.deleted_log.setdefault(obj, []).append((rec["Id"], when))

    def blob(self, size: int, ext: str) -> bytes:
        head = {"pdf": b"%PDF-1.4\n", "png": b"\x89PNG\r\n\x1a\n", "jpg": b"\xff\xd8\xff\xe0",
                "txt": b"", "csv": b"", "docx": b"PK\x03\x04", "xlsx": b"PK\x03\x04"}.get(ext, b"")
        if size == 0:
            return b""
        body = self.rnd.randbytes(max(0, size - len(head)))
        return (head + body)[:size]

    # the org
    def run(self) -> OrgData:
        self.org_id = make_id("00D", 4242 + self.seed)
        self.gen_org_rows()
        self.gen_users()
        self.gen_pipelines()
        self.gen_properties()
        self.gen_accounts()
        self.gen_contacts()
        self.gen_opportunities()
        self.gen_activities()
        self.gen_notes()
        self.gen_files()
        self.gen_attachments()
        self.gen_deletions()
        missing = self.gen_missing_files()
        tooling = self.gen_tooling()
        return OrgData(self.ns, self.scale, self.seed, self.as_of, self.tables, tooling, self.blobs,
                       self.deleted_log, self.record_types, self.pipelines, self.hard, self.ids, self.org_id,
                       self.schema, S.build_tooling_schema(), missing)

    def gen_org_rows(self) -> None:
        t = self.start - timedelta(days=400)
        self.add("Organization", {"Id": self.org_id, "Name": "Harborline Commercial Real Estate",
                                  "OrganizationType": "Enterprise Edition", "IsSandbox": False,
                                  "InstanceName": "NA211", "NamespacePrefix": None,
                                  "TimeZoneSidKey": "America/New_York", "DefaultLocaleSidKey": "en_US"}, t, t)
        self.add("PackageLicense", {"NamespacePrefix": self.ns, "Status": "Active", "IsProvisioned": True,
                                    "AllowedLicenses": -1, "UsedLicenses": 14, "ExpirationDate": None}, t, t)
        self.add("PackageLicense", {"NamespacePrefix": "dlrs", "Status": "Active", "IsProvisioned": True,
                                    "AllowedLicenses": -1, "UsedLicenses": 0, "ExpirationDate": None}, t, t)

    def gen_users(self) -> None:
        self.users: list[str] = []
        specs = [  # first, last, email, username local part, active, title
            ("Integration", "User", "integration@apto-sandbox.example", "integration", True, "API user"),
            ("Ada", "Administrator", "Admin@Example.com", "ada.admin", True, "System Administrator"),
            ("Jane", "Broker", "Jane.Broker@AptoDemo.COM", "jane.broker", True, "Senior Broker"),
            ("Marco", "Rossi", "marco.rossi@aptodemo.com", "marco.rossi", True, "Broker"),
            ("Priya", "Patel", "priya.patel@aptodemo.com", "priya.patel", True, "Leasing Agent"),
            ("Tomás", "Ibáñez", "tomas.ibanez@aptodemo.com", "tomas.ibanez", True, "Analyst"),
            ("Former", "Broker", "former.broker@aptodemo.com", "former.broker", False, "Broker"),
            ("Ex", "Intern", "EX.INTERN@old-brokerage.invalid", "ex.intern", False, "Intern"),
            ("Leasing", "Team", "leasing+team@brokerage-partners.co.uk", "leasing.team", True, "Shared mailbox"),
            ("Data", "Loader", "data.loader@legacy-crm.local", "data.loader", True, "Migration user"),
        ]
        for n in range(2, self.scale + 1):
            specs.append((f"Broker{n}", "Associate", f"broker{n}@aptodemo.com", f"broker{n}", n % 5 != 0, "Associate"))
        for i, (first, last, email, uname, active, title) in enumerate(specs):
            created = self.ts(self.start - timedelta(days=300), self.start)
            rec = self.add("User", {
                "FirstName": first, "LastName": last, "Name": f"{first} {last}", "Email": email,
                "Username": f"{uname}@{self.ns.lower() or 'apto'}.sandbox", "Alias": (first[:1] + last[:4]).lower(),
                "IsActive": active, "Title": title, "Department": "Brokerage", "CompanyName": "Harborline CRE",
                "Phone": f"+1 212 555 {1000 + i:04d}", "UserType": "Standard",
                "TimeZoneSidKey": "America/New_York",
                "LastLoginDate": format_datetime(self.ts(self.as_of - timedelta(days=30))) if active else None},
                created, created)
            self.users.append(rec["Id"])
        for rid in self.users:
            self.tables["User"][rid]["CreatedById"] = self.users[0]
            self.tables["User"][rid]["LastModifiedById"] = self.users[0]
        u = self.tables["User"]
        self.hard["user_integration"] = self.users[0]
        self.hard["user_mixed_case"] = [rid for rid in self.users if u[rid]["Email"] != u[rid]["Email"].lower()]
        self.hard["user_matches_odoo_admin"] = self.users[1]
        self.hard["user_inactive"] = [rid for rid in self.users if not u[rid]["IsActive"]]
        self.hard["user_unmatched"] = [rid for rid in self.users if u[rid]["Email"].lower() != "admin@example.com"]
        self.hard["user_unusual_email"] = [self.users[7], self.users[8], self.users[9]]

    def gen_pipelines(self) -> None:
        t = self.start - timedelta(days=200)
        self.record_types = []
        self.pipelines: dict[str, list[str]] = {}
        for name, dev, stages in (("Brokerage", "Brokerage", BROKERAGE_STAGES), ("Leasing", "Leasing", LEASING_STAGES)):
            rt = self.add("RecordType", {"Name": name, "DeveloperName": dev, "NamespacePrefix": None,
                                         "Description": f"{name} pipeline", "SobjectType": "Opportunity",
                                         "IsActive": True}, t, t)
            self.record_types.append(rt)
            self.pipelines[rt["Id"]] = [s[0] for s in stages]
        self.add("RecordType", {"Name": "Investor", "DeveloperName": "Investor", "NamespacePrefix": None,
                                "Description": "Account record type", "SobjectType": "Account", "IsActive": True}, t, t)
        self.hard["pipelines"] = {rt["Id"]: rt["Name"] for rt in self.record_types}
        order = 0
        forecast = {0: ("Omitted", "Omitted"), 100: ("Closed", "Closed")}
        for name, prob, closed, won in (*BROKERAGE_STAGES, *LEASING_STAGES, INACTIVE_STAGE):
            order += 1
            fc = forecast.get(prob, ("Pipeline", "Pipeline") if prob < 50 else ("BestCase", "Best Case"))
            self.add("OpportunityStage", {"MasterLabel": name, "ApiName": name, "IsActive": name != INACTIVE_STAGE[0],
                                          "SortOrder": order, "IsClosed": closed, "IsWon": won,
                                          "ForecastCategory": fc[0], "ForecastCategoryName": fc[1],
                                          "DefaultProbability": float(prob), "Description": None}, t, t)
        self.stage_info = {s[0]: s for s in (*BROKERAGE_STAGES, *LEASING_STAGES, INACTIVE_STAGE)}

    def gen_properties(self) -> None:
        self.properties = []
        for i in range(20 * self.scale):
            city = self.rnd.choice(CITIES)
            rec = self.add(f"{self.p}Property__c", {
                "Name": f"{self.rnd.randint(1, 999)} {self.rnd.choice(STREETS)} #{i + 1}",
                f"{self.p}Street__c": f"{self.rnd.randint(1, 999)} {self.rnd.choice(STREETS)}",
                f"{self.p}City__c": city[0], f"{self.p}State__c": city[1],
                f"{self.p}Property_Type__c": self.rnd.choice(S.PROPERTY_TYPES),
                f"{self.p}Building_Size__c": float(self.rnd.randrange(2000, 500000, 500)),
                f"{self.p}Year_Built__c": float(self.rnd.randint(1890, 2023)),
                f"{self.p}Listing_Price__c": self.maybe(0.7, round(self.rnd.uniform(5e5, 9e7), 2))})
            self.properties.append(rec["Id"])

    def company_name(self, i: int) -> str:
        r = self.rnd
        name = f"{r.choice(CO_A)} {r.choice(CO_B)} {r.choice(CO_C)}".strip()
        return f"{name} {i}" if name in self.company_names else name

    def gen_accounts(self) -> None:
        p, r = self.p, self.rnd
        self.accounts: list[str] = []
        self.company_names: set[str] = set()
        n = 50 * self.scale
        special = {0: "Cycle Holdings A", 1: "Cycle Holdings B", 2: "Cycle Holdings C",
                   3: "Selfparent Realty LLC", 4: "Müller & Söhne Immobilien GmbH", 5: "東京不動産株式会社",
                   6: "O'Brien & Sons Realty", 7: 'The "100%" Fund \\ Partners', 8: "Harbor Parent Group",
                   9: "Harbor Child East", 10: "Harbor Grandchild East"}
        for i in range(n):
            name = special.get(i) or self.company_name(i)
            self.company_names.add(name)
            city = r.choice(CITIES)
            created = self.ts()
            vals = {
                "Name": name, "Type": r.choice(("Prospect", "Customer - Direct", "Partner", "Other", None)),
                "BillingStreet": f"{r.randint(1, 9999)} {r.choice(STREETS)}" + ("\nSuite 200" if r.random() < 0.2 else ""),
                "BillingCity": city[0], "BillingState": city[1], "BillingPostalCode": city[2],
                "BillingCountry": city[3], "Phone": self.maybe(0.8, f"({r.randint(200, 989)}) 555-{r.randint(0, 9999):04d}"),
                "Fax": self.maybe(0.1, f"(212) 555-{r.randint(0, 9999):04d}"),
                "Website": self.maybe(0.6, f"https://www.{name.split()[0].lower().strip(chr(39))}-{i}.example.com"),
                "Industry": self.maybe(0.8, r.choice(S.INDUSTRIES)),
                "NumberOfEmployees": self.maybe(0.5, r.randint(1, 5000)),
                "AnnualRevenue": self.maybe(0.4, float(r.randrange(100000, 900000000, 1000))),
                "Description": self.maybe(0.3, f"Account {i}: {r.choice(('long-time client', 'referral', 'cold lead'))}."),
                f"{p}Property_Type__c": self.maybe(0.7, r.choice(S.PROPERTY_TYPES)),
                f"{p}Market__c": self.maybe(0.7, city[0]),
                f"{p}Investor_Type__c": self.maybe(0.5, ";".join(sorted(r.sample(S.INVESTOR_TYPES, r.randint(1, 3))))),
                f"{p}Square_Footage__c": self.maybe(0.6, float(r.randrange(1000, 2000000, 100))),
                f"{p}Portfolio_Value__c": self.maybe(0.5, round(r.uniform(1e5, 5e8), 2)),
                f"{p}Cap_Rate__c": self.maybe(0.5, round(r.uniform(3, 11), 2)),
                f"{p}Last_Contact_Date__c": self.maybe(0.6, (created + timedelta(days=r.randint(0, 300))).date().isoformat()),
                f"{p}Do_Not_Call__c": r.random() < 0.1,
                f"{p}Notes__c": self.maybe(0.3, "Prefers calls before 10am.\nAsk about the 2nd portfolio."),
                f"{p}Primary_Property__c": self.maybe(0.4, r.choice(self.properties)),
                "Region__c": self.maybe(0.7, r.choice(S.REGIONS)),
                "Legacy_ID__c": f"LEG-{i:06d}",
                "Secondary_Website__c": self.maybe(0.2, f"http://legacy.example.org/{i}"),
                "Broker_Email__c": self.maybe(0.3, f"broker{i}@Partner-Brokers.example"),
                "Fax_Line__c": self.maybe(0.2, f"+44 20 7946 {r.randint(0, 9999):04d}"),
                "Acquired_On__c": self.maybe(0.4, format_datetime(self.ts(created))),
                "Credit_Score__c": self.maybe(0.4, float(r.randint(300, 850)))}
            rec = self.add("Account", vals, created)
            self.accounts.append(rec["Id"])
        a = self.accounts
        t = self.tables["Account"]
        t[a[0]]["ParentId"], t[a[1]]["ParentId"], t[a[2]]["ParentId"] = a[1], a[2], a[0]
        t[a[3]]["ParentId"] = a[3]
        t[a[9]]["ParentId"], t[a[10]]["ParentId"] = a[8], a[9]
        for i in range(11, n):               # a forest: about a quarter have an earlier parent
            if r.random() < 0.25:
                t[a[i]]["ParentId"] = a[r.randrange(8, i)]
        self.hard["account_cycle"] = a[:3]
        self.hard["account_self_parent"] = a[3]
        self.hard["account_hierarchy"] = a[8:11]
        self.hard["account_non_ascii"] = a[4:6]
        self.hard["account_quotes"] = a[6:8]
        # system-only changes (a roll-up, a package recalculation): SystemModstamp moves, LastModifiedDate not
        touched = []
        for i in range(11, n, 17):
            rec = t[a[i]]
            later = self.ts(_parse(rec["SystemModstamp"]), self.as_of - timedelta(hours=2))
            rec["SystemModstamp"] = max(rec["SystemModstamp"], format_datetime(later))
            touched.append(a[i])
        self.hard["account_systemmodstamp_only"] = touched
        # values outside their picklist
        t[a[4]][f"{p}Property_Type__c"] = "Parking Garage"
        t[a[5]][f"{p}Investor_Type__c"] = "Private;Sovereign Wealth"
        t[a[6]]["Region__c"] = "Antarctica"
        self.hard["picklist_outside"] = {
            f"Account.{p}Property_Type__c": a[4], f"Account.{p}Investor_Type__c": a[5], "Account.Region__c": a[6]}

    def gen_contacts(self) -> None:
        p, r = self.p, self.rnd
        self.contacts: list[str] = []
        self.contact_account: dict[str, str | None] = {}
        self.account_contacts: dict[str, list[str]] = {}
        n = 150 * self.scale
        for i in range(n):
            first, last = r.choice(FIRST), r.choice(LAST)
            acct = r.choice(self.accounts) if r.random() < 0.92 else None
            city = r.choice(CITIES)
            local = f"{first}.{last}".replace(" ", "").replace("'", "")
            email = None
            if r.random() < 0.88:
                email = f"{local}{i}@{r.choice(('gmail.com', 'example.com', 'corp.example', 'AptoClient.com'))}"
                if r.random() < 0.3:
                    email = email.upper() if r.random() < 0.3 else email[0].upper() + email[1:]
                else:
                    email = email.lower()
            created = self.ts()
            vals = {
                "AccountId": acct, "FirstName": first if r.random() > 0.03 else None, "LastName": last,
                "Salutation": self.maybe(0.4, r.choice(("Mr.", "Ms.", "Dr."))), "Email": email,
                "Phone": self.maybe(0.7, f"+1 ({r.randint(200, 989)}) 555-{r.randint(0, 9999):04d}"),
                "MobilePhone": self.maybe(0.5, f"+1 {r.randint(200, 989)} 555 {r.randint(0, 9999):04d}"),
                "Title": self.maybe(0.7, r.choice(("Managing Director", "VP Acquisitions", "Asset Manager", "Owner",
                                                   "CFO", "Leasing Director", "Analyst"))),
                "Department": self.maybe(0.3, "Investments"), "MailingStreet": self.maybe(0.6, f"{r.randint(1, 999)} {r.choice(STREETS)}"),
                "MailingCity": city[0], "MailingState": city[1], "MailingPostalCode": city[2], "MailingCountry": city[3],
                "Birthdate": self.maybe(0.2, date(r.randint(1950, 1995), r.randint(1, 12), r.randint(1, 28)).isoformat()),
                "HasOptedOutOfEmail": r.random() < 0.05, "Description": self.maybe(0.2, "Met at ICSC 2022."),
                f"{p}Contact_Type__c": self.maybe(0.8, r.choice(S.CONTACT_TYPES)),
                f"{p}Interests__c": self.maybe(0.5, ";".join(sorted(r.sample(S.INTERESTS, r.randint(1, 3))))),
                f"{p}Secondary_Email__c": self.maybe(0.15, f"{local.lower()}.alt{i}@example.net"),
                f"{p}LinkedIn__c": self.maybe(0.3, f"https://www.linkedin.com/in/{local.lower()}-{i}"),
                f"{p}Rating__c": self.maybe(0.5, round(r.uniform(1, 5), 1)),
                f"{p}Last_Call_Date__c": self.maybe(0.5, (created + timedelta(days=r.randint(0, 400))).date().isoformat()),
                "Preferred_Language__c": self.maybe(0.4, r.choice(S.LANGUAGES)),
                "Assistant_Phone__c": self.maybe(0.1, f"(212) 555-{r.randint(0, 9999):04d}"),
                "Newsletter__c": r.random() < 0.4, "Last_Touch__c": self.maybe(0.5, format_datetime(self.ts(created))),
                "Commission_Split__c": self.maybe(0.2, round(r.uniform(10, 50), 2))}
            vals["Name"] = " ".join(x for x in (vals["FirstName"], last) if x)
            rec = self.add("Contact", vals, created)
            self.contacts.append(rec["Id"])
            self.contact_account[rec["Id"]] = acct
            if acct:
                self.account_contacts.setdefault(acct, []).append(rec["Id"])
        c = self.tables["Contact"]
        c[self.contacts[0]][f"{p}Contact_Type__c"] = "Landlord (legacy)"
        c[self.contacts[1]][f"{p}Interests__c"] = "Leasing;Crypto"
        self.hard["picklist_outside"].update({f"Contact.{p}Contact_Type__c": self.contacts[0],
                                              f"Contact.{p}Interests__c": self.contacts[1]})
        # a duplicate email (two people sharing a mailbox), one with other case
        c[self.contacts[3]]["Email"] = "shared.inbox@aptoclient.com"
        c[self.contacts[4]]["Email"] = "Shared.Inbox@AptoClient.com"
        self.hard["contact_duplicate_email"] = self.contacts[3:5]
        self.hard["contact_without_account"] = [cid for cid in self.contacts if self.contact_account[cid] is None][:3]
        # AccountContactRelation: one direct per contact with an account, plus extra indirect ones
        multi = []
        for i, cid in enumerate(self.contacts):
            acct = self.contact_account[cid]
            if acct is None:
                continue
            created = datetime.fromisoformat(c[cid]["CreatedDate"].replace("+0000", "+00:00"))
            self.add("AccountContactRelation", {"AccountId": acct, "ContactId": cid, "IsDirect": True, "IsActive": True,
                                                "Roles": self.maybe(0.4, r.choice(S.ROLES)),
                                                "StartDate": created.date().isoformat(), "EndDate": None}, created, created)
            extra = 2 if i < 2 else (1 if r.random() < 0.2 else 0)
            others = [a for a in r.sample(self.accounts, 3) if a != acct][:extra]
            for other in others:
                active = r.random() < 0.8
                self.add("AccountContactRelation", {
                    "AccountId": other, "ContactId": cid, "IsDirect": False, "IsActive": active,
                    "Roles": ";".join(sorted(r.sample(S.ROLES, r.randint(1, 2)))),
                    "StartDate": self.ts(created).date().isoformat(),
                    "EndDate": None if active else self.as_of.date().isoformat()})
            if others:
                multi.append(cid)
        self.hard["contact_multi_account"] = multi[:10]

    def gen_opportunities(self) -> None:
        p, r = self.p, self.rnd
        self.opps: list[str] = []
        won, lost = [], []
        n = 100 * self.scale
        for i in range(n):
            rt = self.record_types[i % 2]
            stages = self.pipelines[rt["Id"]]
            roll = r.random()
            if i < 4:
                roll = (0.1, 0.3, 0.9, 0.6)[i]
            if roll < 0.25:
                stage = stages[-2]                     # won
            elif roll < 0.45:
                stage = stages[-1]                     # lost
            else:
                stage = r.choice(stages[:-2])
            _, prob, closed, is_won = self.stage_info[stage]
            acct = r.choice(self.accounts)
            contacts = self.account_contacts.get(acct, []) if i % 7 == 0 else []
            created = self.ts(hi=self.as_of - timedelta(days=3))
            modified = self.ts(created)
            amount = self.maybe(0.9, float(r.randrange(10000, 50000000, 500)))
            close = (created + timedelta(days=r.randint(20, 400))).date()
            vals = {
                "Name": f"{r.choice(('Sale', 'Lease', 'Refi', 'Acquisition', 'Disposition'))} - "
                        f"{self.tables['Account'][acct]['Name']} #{i + 1}",
                "AccountId": acct, "ContactId": contacts[0] if contacts else None, "RecordTypeId": rt["Id"],
                "StageName": stage, "Amount": amount, "Probability": float(prob), "CloseDate": close.isoformat(),
                "Type": r.choice(S.DEAL_TYPES), "LeadSource": self.maybe(0.6, r.choice(("Web", "Phone Inquiry", "Partner Referral"))),
                "NextStep": None if closed else self.maybe(0.5, "Send updated BOV"),
                "Description": self.maybe(0.3, "Client wants a quick close; 1031 exchange deadline."),
                "IsClosed": closed, "IsWon": is_won,
                "ForecastCategory": "Closed" if is_won else ("Omitted" if closed else "Pipeline"),
                "ForecastCategoryName": "Closed" if is_won else ("Omitted" if closed else "Pipeline"),
                "LastStageChangeDate": format_datetime(modified),
                f"{p}Priority__c": self.maybe(0.85, r.choice(S.PRIORITIES)),
                f"{p}Loss_Reason__c": r.choice(S.LOSS_REASONS) if closed and not is_won else None,
                f"{p}Deal_Type__c": self.maybe(0.8, r.choice(S.DEAL_TYPES)),
                f"{p}Commission__c": round(amount * 0.03, 2) if amount and is_won else None,
                f"{p}Commission_Rate__c": self.maybe(0.6, round(r.uniform(1, 6), 2)),
                f"{p}Listing_Date__c": self.maybe(0.5, created.date().isoformat()),
                f"{p}Tags__c": self.maybe(0.4, ";".join(sorted(r.sample(S.DEAL_TAGS, r.randint(1, 2))))),
                f"{p}Property__c": self.maybe(0.6, r.choice(self.properties)),
                f"{p}Square_Feet__c": self.maybe(0.5, float(r.randrange(500, 400000, 100))),
                "Source_Campaign__c": self.maybe(0.3, r.choice(("Q1 Investor Mailer", "ICSC 2023", "Website"))),
                "Referral_Contact__c": self.maybe(0.2, r.choice(self.contacts)),
                "Signed_At__c": format_datetime(modified) if is_won else None,
                "Board_Approved__c": is_won and r.random() < 0.5,
                "Data_Room_URL__c": self.maybe(0.2, f"https://dataroom.example.com/deal/{i}"),
                "Deal_Memo__c": self.maybe(0.1, "Memo\n- rent roll attached\n- CAM reconciliation pending")}
            rec = self.add("Opportunity", vals, created, modified)
            self.opps.append(rec["Id"])
            (won if is_won else lost if closed else []).append(rec["Id"])
            # OpportunityHistory: the stages walked, each with when it was entered
            idx = stages.index(stage)
            path = stages[:min(idx, len(stages) - 2)][: r.randint(1, 4)] if idx else []
            if closed and not is_won:
                path = stages[: r.randint(1, 3)]
            path = [s for s in path if s != stage] + [stage]
            span = (modified - created) / max(1, len(path))
            for k, s in enumerate(path):
                when = created + span * k
                self.add("OpportunityHistory", {
                    "OpportunityId": rec["Id"], "StageName": s, "Amount": amount, "ExpectedRevenue": (
                        amount * self.stage_info[s][1] / 100 if amount else None),
                    "CloseDate": close.isoformat(), "Probability": float(self.stage_info[s][1]),
                    "ForecastCategory": "Closed" if self.stage_info[s][3] else "Pipeline"}, when, when)
        o = self.tables["Opportunity"]
        o[self.opps[5]][f"{p}Priority__c"] = "Urgent!!"
        o[lost[0]][f"{p}Loss_Reason__c"] = "Client went dark"
        self.hard["picklist_outside"].update({f"Opportunity.{p}Priority__c": self.opps[5],
                                              f"Opportunity.{p}Loss_Reason__c": lost[0]})
        self.hard["opportunity_won"] = won[:5]
        self.hard["opportunity_lost"] = lost[:5]

    def gen_activities(self) -> None:
        r = self.rnd
        tasks: dict[str, list[str]] = {"Task": [], "Email": [], "Call": [], "open": []}
        n_tasks = 220 * self.scale
        for i in range(n_tasks):
            subtype = ("Task", "Email", "Call")[i % 3] if i < 30 else r.choice(("Task", "Email", "Email", "Call", "Call"))
            who = r.choice(self.contacts) if r.random() < 0.8 else None
            acct = self.contact_account.get(who) if who else None
            what = r.choice(self.opps) if r.random() < 0.4 else (acct or r.choice(self.accounts)) if r.random() < 0.7 else None
            created = self.ts()
            done = subtype != "Task" or r.random() < 0.6
            if i in (0, 3):
                done = False
            due = (created + timedelta(days=r.randint(-5, 60))).date()
            if not done and r.random() < 0.5:
                due = (self.as_of + timedelta(days=r.randint(1, 60))).date()
            completed = self.ts(created) if done else None
            vals: dict[str, Any] = {
                "WhoId": who, "WhatId": what, "AccountId": acct or (what if what and what.startswith("001") else None),
                "ActivityDate": due.isoformat(), "Status": "Completed" if done else r.choice(("Not Started", "In Progress")),
                "Priority": r.choice(("High", "Normal", "Normal", "Low")), "IsClosed": done,
                "CompletedDateTime": format_datetime(completed) if completed else None, "TaskSubtype": subtype}
            vals["IsHighPriority"] = vals["Priority"] == "High"
            if subtype == "Email":
                vals.update({"Subject": f"Email: {r.choice(('Offering memorandum', 'Follow-up', 'Tour recap', 'LOI draft'))}",
                             "Type": "Email", "Description": (
                                 "To: client@example.com\nSubject: Follow-up\n\nThanks for your time today — "
                                 "attached the rent roll. Grüße, Jane")})
            elif subtype == "Call":
                vals.update({"Subject": f"Call {r.choice(('intro', 'pricing', 'check-in'))}", "Type": "Call",
                             "CallDurationInSeconds": r.randint(20, 3600), "CallType": r.choice(("Inbound", "Outbound")),
                             "CallDisposition": r.choice(("Left voicemail", "Connected", "No answer")),
                             "Description": self.maybe(0.6, "Discussed cap rate expectations.")})
            else:
                vals.update({"Subject": r.choice(("Send BOV", "Prepare comps", "Schedule tour", "Update rent roll")),
                             "Type": "Other", "Description": self.maybe(0.4, "Internal to-do")})
            rec = self.add("Task", vals, created, completed if completed else None)
            tasks[subtype].append(rec["Id"])
            if not done:
                tasks["open"].append(rec["Id"])
        self.tasks = [rid for lst in (tasks["Task"], tasks["Email"], tasks["Call"]) for rid in lst]
        self.hard["task_todo"] = tasks["Task"][:3]
        self.hard["task_email"] = tasks["Email"][:3]
        self.hard["task_call"] = tasks["Call"][:3]
        self.hard["task_open"] = tasks["open"][:3]
        past, future, allday = [], [], []
        for i in range(80 * self.scale):
            who = r.choice(self.contacts) if r.random() < 0.85 else None
            what = r.choice(self.opps) if r.random() < 0.5 else self.contact_account.get(who) if who else None
            created = self.ts()
            is_future = i % 4 == 1
            start = (self.as_of + timedelta(days=r.randint(1, 90), hours=r.randint(8, 17))) if is_future else self.ts(created)
            start = start.replace(minute=(start.minute // 15) * 15, second=0)
            is_all_day = i % 10 == 3
            if is_all_day:
                start = start.replace(hour=0, minute=0)
            minutes = 1440 if is_all_day else r.choice((15, 30, 45, 60, 90, 120))
            end = start + timedelta(minutes=minutes)
            rec = self.add("Event", {
                "WhoId": who, "WhatId": what, "AccountId": self.contact_account.get(who) if who else None,
                "Subject": r.choice(("Property tour", "Lunch meeting", "Closing", "Site visit", "Pitch meeting")),
                "Description": self.maybe(0.4, "Bring the OM and the floor plans."),
                "Location": self.maybe(0.7, r.choice(("Client office", "On site", "Zoom", "Café Central, Wien"))),
                "StartDateTime": format_datetime(start), "EndDateTime": format_datetime(end),
                "ActivityDateTime": format_datetime(start), "ActivityDate": start.date().isoformat(),
                "DurationInMinutes": minutes, "IsAllDayEvent": is_all_day, "ShowAs": "Busy", "EventSubtype": "Event",
                "Type": "Meeting"}, created)
            (future if is_future else past).append(rec["Id"])
            if is_all_day:
                allday.append(rec["Id"])
        self.events = past + future
        self.hard["event_past"] = past[:3]
        self.hard["event_future"] = future[:3]
        self.hard["event_all_day"] = allday[:3]

    def gen_notes(self) -> None:
        r = self.rnd
        notes = []
        for i in range(15 * self.scale):
            parent = r.choice((r.choice(self.accounts), r.choice(self.contacts), r.choice(self.opps)))
            rec = self.add("Note", {"ParentId": parent, "Title": f"Note {i + 1}: {r.choice(('call recap', 'tour feedback', 'pricing'))}",
                                    "Body": r.choice(("Client is interested in the 3rd floor.",
                                                      "Besprechung verschoben – neue Termine folgen.",
                                                      "Multi-line\nnote\n\twith tab")),
                                    "IsPrivate": i == 2})
            notes.append(rec["Id"])
        self.hard["note_legacy"] = notes[:3]
        snotes = []
        for i in range(8 * self.scale):
            parent = r.choice((r.choice(self.accounts), r.choice(self.opps)))
            text = f"<p>Meeting notes {i + 1}</p><p>Next: send LOI &amp; comps – café</p>"
            data = text.encode()
            doc, ver = self.add_document(f"Meeting notes {i + 1}", "snote", "SNOTE", data, parents=[parent])
            self.add("ContentNote", {"Id": doc["Id"], "Title": doc["Title"], "Content": None,
                                     "TextPreview": text.replace("<p>", "").replace("</p>", " ").strip()[:255],
                                     "FileType": "SNOTE", "FileExtension": "snote", "ContentSize": len(data),
                                     "LatestPublishedVersionId": ver["Id"], "IsReadOnly": False},
                     _parse(doc["CreatedDate"]), _parse(doc["LastModifiedDate"]), doc["OwnerId"])
            self.blobs[doc["Id"]] = data
            snotes.append(doc["Id"])
        self.hard["content_note"] = snotes[:3]

    def add_document(self, title: str, ext: str, ftype: str, data: bytes, parents: list[str],
                     versions: list[bytes] | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
        created = self.ts()
        owner = self.owner()
        doc = self.add("ContentDocument", {"Title": title, "FileType": ftype, "FileExtension": ext,
                                           "ContentSize": len(data), "Description": None, "PublishStatus": "P",
                                           "ContentModifiedDate": None}, created, owner=owner)
        all_versions = [*(versions or []), data]
        ver: dict[str, Any] = {}
        when = created
        for k, payload in enumerate(all_versions):
            last = k == len(all_versions) - 1
            when = self.ts(when, self.as_of - timedelta(hours=3)) if k else created
            ver = self.add("ContentVersion", {
                "ContentDocumentId": doc["Id"], "Title": title, "PathOnClient": f"{title}.{ext}" if ext else title,
                "FileExtension": ext, "FileType": ftype, "ContentSize": len(payload), "IsLatest": last,
                "VersionNumber": str(k + 1), "VersionData": None, "Checksum": hashlib.md5(payload).hexdigest(),  # noqa: S324
                "Description": None, "ReasonForChange": "updated numbers" if k else None,
                "ContentModifiedDate": format_datetime(when), "FirstPublishLocationId": parents[0] if parents else None},
                when, when, owner=owner)
            self.blobs[ver["Id"]] = payload
        doc.update({"LatestPublishedVersionId": ver["Id"], "ContentModifiedDate": ver["ContentModifiedDate"],
                    "LastModifiedDate": max(doc["LastModifiedDate"], ver["LastModifiedDate"]),
                    "SystemModstamp": max(doc["SystemModstamp"], ver["SystemModstamp"])})
        for target in [owner, *parents]:
            self.add("ContentDocumentLink", {"LinkedEntityId": target, "ContentDocumentId": doc["Id"],
                                             "ShareType": "I" if target == owner else "V",
                                             "Visibility": "AllUsers"}, created)
        return doc, ver

    def gen_files(self) -> None:
        r = self.rnd
        files, multi_version, multi_link = [], [], []
        specials = [("Exposé Büro 東京", "pdf", "PDF", 2345), ("empty", "txt", "TEXT", 0),
                    ("Rent Roll Q3 2023", "xlsx", "EXCEL_X", 5120), ("Grundriss Straße 5", "png", "PNG", 1800)]
        for i in range(30 * self.scale):
            if i < len(specials):
                title, ext, ftype, size = specials[i]
            else:
                ext, ftype = r.choice((("pdf", "PDF"), ("jpg", "JPG"), ("docx", "WORD_X"), ("csv", "CSV"), ("png", "PNG")))
                title = f"{r.choice(('Offering Memorandum', 'Site photo', 'LOI', 'Lease abstract', 'Comps'))} {i + 1}"
                size = r.randint(1, 8000)
            data = self.blob(size, ext)
            parents = [r.choice((r.choice(self.accounts), r.choice(self.opps), r.choice(self.contacts)))]
            if i % 6 == 2:
                parents.append(r.choice(self.opps))
                multi_link.append(len(files))
            older = [self.blob(max(1, size // 2), ext)] if i % 5 == 2 else None
            doc, _ = self.add_document(title, ext, ftype, data, parents, older)
            files.append(doc["Id"])
            if older:
                multi_version.append(doc["Id"])
        self.files = files
        self.hard["file_non_ascii"] = files[0]
        self.hard["file_empty"] = files[1]
        self.hard["file_multi_version"] = multi_version[:3]
        self.hard["file_multi_link"] = [files[k] for k in multi_link[:3]]

    def gen_attachments(self) -> None:
        r = self.rnd
        atts = []
        for i in range(10 * self.scale):
            name, ctype, size = (("Grundriss Straße.png", "image/png", 900) if i == 0 else
                                 ("leer.txt", "text/plain", 0) if i == 1 else
                                 (f"attachment-{i + 1}.pdf", "application/pdf", r.randint(1, 6000)))
            data = self.blob(size, name.rsplit(".", 1)[-1])
            parent = r.choice((r.choice(self.accounts), r.choice(self.opps), r.choice(self.contacts)))
            rec = self.add("Attachment", {"ParentId": parent, "Name": name, "ContentType": ctype,
                                          "BodyLength": len(data), "Body": None, "Description": None,
                                          "IsPrivate": False})
            self.blobs[rec["Id"]] = data
            atts.append(rec["Id"])
        self.attachments = atts
        self.hard["attachment_non_ascii"] = atts[0]
        self.hard["attachment_empty"] = atts[1]

    def gen_deletions(self) -> None:
        r = self.rnd
        protected = {x for v in self.hard.values() for x in (v if isinstance(v, list) else
                                                             v.values() if isinstance(v, dict) else [v])}
        deleted: dict[str, list[str]] = {}
        for obj, ids, k in (("Account", self.accounts, 2), ("Contact", self.contacts, 4),
                            ("Opportunity", self.opps, 3), ("Task", self.tasks, 5), ("Event", self.events, 2)):
            candidates = [x for x in ids[12:] if x not in protected]
            for rid in r.sample(candidates, min(len(candidates), k * self.scale)):
                self.delete(obj, self.tables[obj][rid])
                deleted.setdefault(obj, []).append(rid)
        for obj, rids in deleted.items():
            self.hard[f"deleted_{obj}"] = sorted(rids)

    def gen_missing_files(self) -> set[str]:
        """A file and an attachment whose bytes are gone from the org's storage: their records and download
        URLs are there, the download answers 404 NOT_FOUND. The first of each (past the named and special ones)
        whose records all hang on live companies, contacts or deals: no random draw, so the rest of the
        org is as it was."""
        parents = {"001": "Account", "003": "Contact", "006": "Opportunity"}

        def live(rid: str | None) -> bool:
            obj = parents.get((rid or "")[:3])
            return bool(obj) and not self.tables[obj].get(rid or "", {"IsDeleted": True}).get("IsDeleted")

        links: dict[str, list[str]] = {}
        for lk in self.tables["ContentDocumentLink"].values():
            if (lk["LinkedEntityId"] or "")[:3] in parents:
                links.setdefault(lk["ContentDocumentId"], []).append(lk["LinkedEntityId"])
        named = {self.hard["file_non_ascii"], self.hard["file_empty"], *self.hard["file_multi_version"],
                 *self.hard["file_multi_link"]}
        doc = next(d for d in self.files[4:] if d not in named and links.get(d) and all(map(live, links[d])))
        att = next(a for a in self.attachments[2:] if live(self.tables["Attachment"][a]["ParentId"]))
        self.hard["file_missing"] = doc
        self.hard["attachment_missing"] = att
        return {self.tables["ContentDocument"][doc]["LatestPublishedVersionId"], att}

    def gen_tooling(self) -> dict[str, dict[str, dict[str, Any]]]:
        ns = self.ns
        t = format_datetime(self.start)
        out: dict[str, dict[str, dict[str, Any]]] = {"WorkflowRule": {}, "ValidationRule": {},
                                                     "FlowDefinitionView": {}, "ApexTrigger": {}}
        base = {"CreatedDate": t, "LastModifiedDate": t, "SystemModstamp": t, "CreatedById": self.users[0],
                "LastModifiedById": self.users[0]}

        def row(obj: str, prefix: str, vals: dict[str, Any], with_base: bool = True) -> None:
            rid = self.ids.new(prefix)
            out[obj][rid] = {"Id": rid, **(base if with_base else {}), **vals}
        row("WorkflowRule", "01Q", {"Name": "Notify broker on Closed Won", "TableEnumOrId": "Opportunity",
                                    "NamespacePrefix": None, "ManageableState": "unmanaged", "Description": "Email alert"})
        row("WorkflowRule", "01Q", {"Name": "Set Region from Billing State", "TableEnumOrId": "Account",
                                    "NamespacePrefix": None, "ManageableState": "unmanaged", "Description": None})
        row("WorkflowRule", "01Q", {"Name": "Apto Deal Commission Update", "TableEnumOrId": "Opportunity",
                                    "NamespacePrefix": ns, "ManageableState": "installed", "Description": "Package rule"})
        row("ValidationRule", "03d", {"ValidationName": "Loss_Reason_Required", "EntityDefinitionId": "Opportunity",
                                      "Active": True, "Description": "Lost deals need a reason",
                                      "ErrorDisplayField": f"{ns}__Loss_Reason__c", "ErrorMessage": "Enter a loss reason.",
                                      "NamespacePrefix": None, "ManageableState": "unmanaged"})
        row("ValidationRule", "03d", {"ValidationName": "Website_Must_Be_HTTPS", "EntityDefinitionId": "Account",
                                      "Active": False, "Description": None, "ErrorDisplayField": "Website",
                                      "ErrorMessage": "Website must start with https://", "NamespacePrefix": None,
                                      "ManageableState": "unmanaged"})
        row("ValidationRule", "03d", {"ValidationName": "Cap_Rate_Range", "EntityDefinitionId": "Account",
                                      "Active": True, "Description": "0-25%", "ErrorDisplayField": f"{ns}__Cap_Rate__c",
                                      "ErrorMessage": "Cap rate must be between 0 and 25.", "NamespacePrefix": ns,
                                      "ManageableState": "installed"})
        for label, ptype, trig, obj, active in (
                ("Opportunity After Save - Assign Team", "AutoLaunchedFlow", "RecordAfterSave", "Opportunity", True),
                ("Contact Before Save - Normalize Phone", "AutoLaunchedFlow", "RecordBeforeSave", "Contact", True),
                ("Weekly Stale Deal Reminder", "AutoLaunchedFlow", "Scheduled", None, False),
                ("New Listing Intake", "Flow", None, None, True)):
            api = label.replace(" - ", "_").replace(" ", "_")
            rid = self.ids.new("300")
            out["FlowDefinitionView"][rid] = {
                "Id": rid, "DurableId": rid, "ApiName": api, "Label": label, "Description": None, "ProcessType": ptype,
                "TriggerType": trig, "IsActive": active, "ActiveVersionId": self.ids.new("301") if active else None,
                "LatestVersionId": self.ids.new("301"), "NamespacePrefix": None, "TriggerObjectOrEventId": obj,
                "TriggerObjectOrEventLabel": obj, "LastModifiedDate": t, "LastModifiedBy": "Ada Administrator",
                "ManageableState": "unmanaged"}
        for name, table, nsp, status, body in (
                ("OpportunityTrigger", "Opportunity", ns, "Active", "trigger OpportunityTrigger on Opportunity (before insert, before update) { McLabs2.Handler.run(); }"),
                ("AccountRollup", "Account", None, "Active", "trigger AccountRollup on Account (after update) {\n  // roll up portfolio value\n}"),
                ("LegacyTaskSync", "Task", None, "Inactive", "trigger LegacyTaskSync on Task (after insert) { }")):
            row("ApexTrigger", "01q", {
                "Name": name, "TableEnumOrId": table, "NamespacePrefix": nsp, "Status": status, "ApiVersion": 58.0,
                "IsValid": True, "UsageBeforeInsert": "before insert" in body, "UsageAfterInsert": "after insert" in body,
                "UsageBeforeUpdate": "before update" in body, "UsageAfterUpdate": "after update" in body,
                "UsageBeforeDelete": False, "UsageAfterDelete": False, "UsageAfterUndelete": False, "UsageIsBulk": True,
                "LengthWithoutComments": len(body), "Body": "(hidden)" if nsp else body,
                "ManageableState": "installed" if nsp else "unmanaged"})
        return out


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("+0000", "+00:00"))


def default_as_of() -> datetime:
    now = datetime.now(UTC)
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


#: the org profiles: ``default``, and ``variant``, an org whose fields differ from the default (see :func:`_variant`)
PROFILES = ("default", "variant")
#: the variant org's second managed package
VARIANT_NAMESPACE = "Brokerly"


def generate_org(scale: int = 1, seed: int = 7, namespace: str = "McLabs2", as_of: datetime | None = None,
                 profile: str = "default") -> OrgData:
    """Generate the org's records (deterministic for ``scale``, ``seed``, ``namespace``, ``as_of`` and ``profile``)."""
    if scale < 1:
        raise ValueError("scale must be >= 1")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}")
    as_of = (as_of or default_as_of()).astimezone(UTC)
    data = _Gen(scale, seed, namespace, as_of).run()
    if profile == "variant":
        _variant(data, random.Random(seed * 31 + 1))
    return data


def _variant(data: OrgData, rnd: random.Random) -> None:
    """An org whose fields differ from the default profile (``hard_cases["variant"]`` names them):

    - a renamed standard field: Account ``Phone`` is ``MainPhone`` (label "Main Phone");
    - two of the customer's own custom fields, outside any package namespace: Account ``Tenant_Count__c``
      (a number) and Contact ``Pronouns__c`` (text);
    - another package's namespace (``Brokerly``): Account ``Brokerly__Market__c`` (text, the same API name as
      the Apto package's ``Market__c``) and Opportunity ``Brokerly__Score__c`` (a number).
    """
    ns = VARIANT_NAMESPACE
    acc, con, opp = data.schema["Account"], data.schema["Contact"], data.schema["Opportunity"]
    phone = acc.field("Phone")
    assert phone is not None
    phone.name, phone.label = "MainPhone", "Main Phone"
    acc.fields += [S.FieldDef("Tenant_Count__c", "double", "Tenant Count", precision=6, scale=0),
                   S.FieldDef(f"{ns}__Market__c", "string", "Market (Brokerly)", length=80)]
    con.fields.append(S.FieldDef("Pronouns__c", "string", "Pronouns", length=20))
    opp.fields.append(S.FieldDef(f"{ns}__Score__c", "double", "Deal Score", precision=5, scale=1))
    for odef in (acc, con, opp):
        odef.__post_init__()
    for rec in data.tables["Account"].values():
        rec["MainPhone"] = rec.pop("Phone", None)
        rec["Tenant_Count__c"] = float(rnd.randint(0, 40)) if rnd.random() < 0.6 else None
        rec[f"{ns}__Market__c"] = rnd.choice(("Downtown", "Suburban", "Rural", None))
    for rec in data.tables["Contact"].values():
        rec["Pronouns__c"] = rnd.choice(("she/her", "he/him", "they/them", None, None))
    for rec in data.tables["Opportunity"].values():
        rec[f"{ns}__Score__c"] = round(rnd.uniform(0, 100), 1) if rnd.random() < 0.7 else None
    lic = dict(next(iter(data.tables["PackageLicense"].values())))
    lic.update(Id=data.ids.new("050"), NamespacePrefix=ns, UsedLicenses=3)
    data.tables["PackageLicense"][lic["Id"]] = lic
    data.hard_cases["variant"] = {
        "renamed": {"Account.Phone": "Account.MainPhone"},
        "customer_fields": ["Account.Tenant_Count__c", "Contact.Pronouns__c"],
        "other_namespace": ns, "other_namespace_fields": [f"Account.{ns}__Market__c", f"Opportunity.{ns}__Score__c"]}
