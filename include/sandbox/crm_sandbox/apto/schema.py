"""The Apto org's schema: standard objects, the managed package's namespaced objects and fields, the
customer's own custom fields, and the Tooling API objects; with Salesforce-shaped describe output.

Names containing ``{ns}`` get the package namespace (``McLabs2`` by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .soql import SOAP_TYPE, FieldMeta

MASTER_RECORD_TYPE = "012000000000000AAA"


@dataclass
class FieldDef:
    name: str
    type: str
    label: str = ""
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    picklist: Sequence[str] = ()
    reference_to: Sequence[str] = ()
    relationship_name: str | None = None
    nillable: bool = True
    updateable: bool = True
    external_id: bool = False
    name_field: bool = False
    unique: bool = False
    restricted: bool = False
    help: str | None = None
    inactive: Sequence[str] = ()     # picklist values kept for old records, no longer offered

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def meta(self) -> FieldMeta:
        return FieldMeta(self.name, self.type, tuple(self.reference_to), self.relationship_name, self.custom,
                         filterable=self.filterable, sortable=self.sortable)

    @property
    def filterable(self) -> bool:
        return self.type != "base64" and not (self.type == "textarea" and (self.length or 255) > 255)

    @property
    def sortable(self) -> bool:
        return self.filterable and self.type != "multipicklist"

    def describe(self) -> dict[str, Any]:
        t = self.type
        length = self.length if self.length is not None else {
            "string": 255, "textarea": 255, "picklist": 255, "multipicklist": 4099, "url": 255, "email": 80,
            "phone": 40, "id": 18, "reference": 18, "combobox": 255, "encryptedstring": 175}.get(t, 0)
        numeric = t in {"double", "currency", "percent"}
        system = self.name in {"Id", "IsDeleted", "CreatedDate", "CreatedById", "LastModifiedDate",
                               "LastModifiedById", "SystemModstamp"}
        return {
            "aggregatable": t not in {"textarea", "base64", "multipicklist"},
            "aiPredictionField": False,
            "autoNumber": False,
            "byteLength": length * 3 if length else 0,
            "calculated": False,
            "calculatedFormula": None,
            "cascadeDelete": False,
            "caseSensitive": False,
            "compoundFieldName": None,
            "controllerName": None,
            "createable": self.updateable and not system,
            "custom": self.custom,
            "defaultValue": False if t == "boolean" else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": t == "boolean" or system,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": 0,
            "displayLocationInDecimal": False,
            "encrypted": False,
            "externalId": self.external_id,
            "extraTypeInfo": "plaintextarea" if t == "textarea" else None,
            "filterable": self.filterable,
            "filteredLookupInfo": None,
            "groupable": t not in {"textarea", "base64", "double", "currency", "percent", "datetime", "multipicklist"},
            "highScaleNumber": False,
            "htmlFormatted": False,
            "idLookup": t == "id" or self.external_id or self.name in {"Email", "Username", "Name"} and t != "textarea",
            "inlineHelpText": self.help,
            "label": self.label or _label(self.name),
            "length": length,
            "mask": None,
            "maskType": None,
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": len(self.reference_to) > 1,
            "nillable": self.nillable and t != "boolean" and not system,
            "permissionable": self.custom,
            "picklistValues": [
                {"active": v not in self.inactive, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist],
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": (self.precision or 18) if numeric else 0,
            "queryByDistance": False,
            "referenceTargetField": None,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship_name,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted,
            "scale": (self.scale if self.scale is not None else 2) if numeric else 0,
            "searchPrefilterable": False,
            "soapType": "xsd:" + SOAP_TYPE.get(t, "string") if t not in {"id", "reference"} else "tns:ID",
            "sortable": self.sortable,
            "type": t,
            "unique": self.unique,
            "updateable": self.updateable and not system,
            "writeRequiresMasterRead": False,
        }


def _label(name: str) -> str:
    base = name
    if base.endswith("__c"):
        base = base[:-3]
        if "__" in base:
            base = base.split("__", 1)[1]
    if base.endswith("Id") and len(base) > 2:
        base = base[:-2] + " ID"
    out = []
    for i, ch in enumerate(base.replace("_", " ")):
        if ch.isupper() and i and base[i - 1].islower():
            out.append(" ")
        out.append(ch)
    return "".join(out).strip()


@dataclass
class ObjectDef:
    name: str
    key_prefix: str
    label: str
    label_plural: str
    fields: list[FieldDef] = field(default_factory=list)
    tooling: bool = False
    queryable: bool = True
    has_record_types: bool = False

    def __post_init__(self) -> None:
        self._by_lower = {f.name.lower(): f for f in self.fields}
        self._by_rel = {f.relationship_name.lower(): f for f in self.fields if f.relationship_name}

    @property
    def custom(self) -> bool:
        return self.name.endswith("__c")

    def field(self, name: str) -> FieldDef | None:
        return self._by_lower.get(name.lower())

    def relationship(self, name: str) -> FieldDef | None:
        return self._by_rel.get(name.lower())

    def field_names(self) -> list[str]:
        return [f.name for f in self.fields]

    def has(self, name: str) -> bool:
        return name.lower() in self._by_lower


def _sys(owner: bool = True, deleted: bool = True, modified: bool = True) -> list[FieldDef]:
    out = [FieldDef("Id", "id", "Record ID", nillable=False, updateable=False)]
    if owner:
        out.append(FieldDef("OwnerId", "reference", "Owner ID", reference_to=("User",), relationship_name="Owner"))
    if deleted:
        out.append(FieldDef("IsDeleted", "boolean", "Deleted", updateable=False))
    out += [FieldDef("CreatedDate", "datetime", "Created Date", updateable=False),
            FieldDef("CreatedById", "reference", "Created By ID", reference_to=("User",),
                     relationship_name="CreatedBy", updateable=False)]
    if modified:
        out += [FieldDef("LastModifiedDate", "datetime", "Last Modified Date", updateable=False),
                FieldDef("LastModifiedById", "reference", "Last Modified By ID", reference_to=("User",),
                         relationship_name="LastModifiedBy", updateable=False)]
    out.append(FieldDef("SystemModstamp", "datetime", "System Modstamp", updateable=False))
    return out


def _ref(name: str, *targets: str, rel: str | None = None, label: str = "") -> FieldDef:
    if rel is None:
        rel = name[:-3] + "__r" if name.endswith("__c") else name[:-2]
    return FieldDef(name, "reference", label, reference_to=targets, relationship_name=rel)


def _pick(name: str, values: Sequence[str], label: str = "", multi: bool = False) -> FieldDef:
    return FieldDef(name, "multipicklist" if multi else "picklist", label, picklist=tuple(values))


# Picklist values used by the generator as well
PROPERTY_TYPES = ("Office", "Retail", "Industrial", "Multifamily", "Land", "Hotel", "Mixed Use")
INVESTOR_TYPES = ("Private", "Institutional", "REIT", "Family Office", "1031 Exchange")
CONTACT_TYPES = ("Owner", "Tenant", "Broker", "Investor", "Lender", "Developer")
INTERESTS = ("Acquisitions", "Dispositions", "Leasing", "Financing", "Development")
PRIORITIES = ("Low", "Medium", "High", "Critical")
LOSS_REASONS = ("Price", "Timing", "Lost to Competitor", "No Decision", "Property Withdrawn", "Financing Failed")
DEAL_TYPES = ("Sale", "Lease", "Sublease", "Financing", "Consulting")
DEAL_TAGS = ("Off-Market", "Portfolio", "Distressed", "Value-Add", "Core", "Trophy")
REGIONS = ("Northeast", "Southeast", "Midwest", "Southwest", "West", "International")
LANGUAGES = ("English", "Spanish", "German", "French", "Japanese", "Mandarin")
INDUSTRIES = ("Real Estate", "Finance", "Banking", "Insurance", "Retail", "Healthcare", "Technology",
              "Hospitality", "Government", "Education")
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
TASK_SUBTYPES = ("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")
ROLES = ("Decision Maker", "Economic Buyer", "Influencer", "Technical Buyer", "Business User",
         "Evaluator", "Executive Sponsor", "Other")


def build_schema(ns: str = "McLabs2", stage_names: Sequence[str] = (),
                 inactive_stages: Sequence[str] = ()) -> dict[str, ObjectDef]:
    """The org's data objects (REST ``/sobjects``), keyed by API name."""
    p = f"{ns}__" if ns else ""
    who = ("Contact", "Lead")
    what = ("Account", "Opportunity", f"{p}Property__c")
    objs = [
        ObjectDef("Organization", "00D", "Organization", "Organizations", [
            *_sys(owner=False, deleted=False), FieldDef("Name", "string", name_field=True),
            FieldDef("OrganizationType", "string"), FieldDef("IsSandbox", "boolean"),
            FieldDef("InstanceName", "string"), FieldDef("NamespacePrefix", "string"),
            FieldDef("TimeZoneSidKey", "picklist"), FieldDef("DefaultLocaleSidKey", "picklist")]),
        ObjectDef("PackageLicense", "050", "Package License", "Package Licenses", [
            *_sys(owner=False, deleted=False), FieldDef("NamespacePrefix", "string"),
            _pick("Status", ("Active", "Trial", "Expired")), FieldDef("IsProvisioned", "boolean"),
            FieldDef("AllowedLicenses", "int"), FieldDef("UsedLicenses", "int"),
            FieldDef("ExpirationDate", "datetime")]),
        ObjectDef("User", "005", "User", "Users", [
            *_sys(owner=False, deleted=False), FieldDef("Username", "string", length=80, unique=True),
            FieldDef("LastName", "string", length=80, nillable=False), FieldDef("FirstName", "string", length=40),
            FieldDef("Name", "string", "Full Name", length=121, name_field=True, updateable=False),
            FieldDef("Email", "email", length=128), FieldDef("Alias", "string", length=8),
            FieldDef("IsActive", "boolean", "Active"), FieldDef("Title", "string", length=80),
            FieldDef("Department", "string", length=80), FieldDef("CompanyName", "string", length=80),
            FieldDef("Phone", "phone"), _pick("UserType", ("Standard", "AutomatedProcess", "CsnOnly")),
            _pick("TimeZoneSidKey", ("America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/Berlin")),
            FieldDef("LastLoginDate", "datetime", updateable=False)]),
        ObjectDef("RecordType", "012", "Record Type", "Record Types", [
            *_sys(owner=False, deleted=False), FieldDef("Name", "string", length=80, name_field=True),
            FieldDef("DeveloperName", "string", length=80), FieldDef("NamespacePrefix", "string", length=15),
            FieldDef("Description", "string"),
            _pick("SobjectType", ("Account", "Contact", "Opportunity")), FieldDef("IsActive", "boolean")]),
        ObjectDef("OpportunityStage", "01J", "Opportunity Stage", "Opportunity Stages", [
            *_sys(owner=False, deleted=False), FieldDef("MasterLabel", "string", length=255),
            FieldDef("ApiName", "string"), FieldDef("IsActive", "boolean"), FieldDef("SortOrder", "int"),
            FieldDef("IsClosed", "boolean"), FieldDef("IsWon", "boolean"),
            _pick("ForecastCategory", ("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")),
            FieldDef("ForecastCategoryName", "string"),
            FieldDef("DefaultProbability", "percent", precision=3, scale=0), FieldDef("Description", "string")]),
        ObjectDef(f"{p}Property__c", "a0B", "Property", "Properties", [
            *_sys(), FieldDef("Name", "string", "Property Name", length=80, name_field=True),
            FieldDef(f"{p}Street__c", "string"), FieldDef(f"{p}City__c", "string", length=80),
            FieldDef(f"{p}State__c", "string", length=40),
            _pick(f"{p}Property_Type__c", PROPERTY_TYPES), FieldDef(f"{p}Building_Size__c", "double", precision=12, scale=0),
            FieldDef(f"{p}Year_Built__c", "double", precision=4, scale=0),
            FieldDef(f"{p}Listing_Price__c", "currency", precision=16, scale=2),
            _ref(f"{p}Owner_Company__c", "Account", label="Owner Company")]),
        ObjectDef("Account", "001", "Account", "Accounts", [
            *_sys(), FieldDef("Name", "string", "Account Name", name_field=True),
            _ref("ParentId", "Account", rel="Parent", label="Parent Account ID"),
            _pick("Type", ("Prospect", "Customer - Direct", "Customer - Channel", "Partner", "Other")),
            FieldDef("BillingStreet", "textarea"), FieldDef("BillingCity", "string", length=40),
            FieldDef("BillingState", "string", length=80), FieldDef("BillingPostalCode", "string", length=20),
            FieldDef("BillingCountry", "string", length=80), FieldDef("Phone", "phone"),
            FieldDef("Fax", "phone"), FieldDef("Website", "url"), _pick("Industry", INDUSTRIES),
            FieldDef("NumberOfEmployees", "int"), FieldDef("AnnualRevenue", "currency"),
            FieldDef("Description", "textarea", length=32000),
            _pick(f"{p}Property_Type__c", PROPERTY_TYPES, "Property Type"),
            FieldDef(f"{p}Market__c", "string", "Market", length=80),
            _pick(f"{p}Investor_Type__c", INVESTOR_TYPES, "Investor Type", multi=True),
            FieldDef(f"{p}Square_Footage__c", "double", "Square Footage", precision=12, scale=0),
            FieldDef(f"{p}Portfolio_Value__c", "currency", "Portfolio Value", precision=16, scale=2),
            FieldDef(f"{p}Cap_Rate__c", "percent", "Cap Rate", precision=5, scale=2),
            FieldDef(f"{p}Last_Contact_Date__c", "date", "Last Contact Date"),
            FieldDef(f"{p}Do_Not_Call__c", "boolean", "Do Not Call"),
            FieldDef(f"{p}Notes__c", "textarea", "Apto Notes", length=32768),
            _ref(f"{p}Primary_Property__c", f"{p}Property__c", label="Primary Property"),
            _pick("Region__c", REGIONS, "Region"),
            FieldDef("Legacy_ID__c", "string", "Legacy ID", length=40, external_id=True, unique=True),
            FieldDef("Secondary_Website__c", "url", "Secondary Website"),
            FieldDef("Broker_Email__c", "email", "Broker Email"),
            FieldDef("Fax_Line__c", "phone", "Fax Line"),
            FieldDef("Acquired_On__c", "datetime", "Acquired On"),
            FieldDef("Credit_Score__c", "double", "Credit Score", precision=3, scale=0)]),
        ObjectDef("Contact", "003", "Contact", "Contacts", [
            *_sys(), _ref("AccountId", "Account", label="Account ID"),
            FieldDef("LastName", "string", length=80, nillable=False), FieldDef("FirstName", "string", length=40),
            FieldDef("Salutation", "picklist", picklist=("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.")),
            FieldDef("Name", "string", "Full Name", length=121, name_field=True, updateable=False),
            FieldDef("Email", "email"), FieldDef("Phone", "phone", "Business Phone"),
            FieldDef("MobilePhone", "phone", "Mobile Phone"), FieldDef("Title", "string", length=128),
            FieldDef("Department", "string", length=80),
            FieldDef("MailingStreet", "textarea"), FieldDef("MailingCity", "string", length=40),
            FieldDef("MailingState", "string", length=80), FieldDef("MailingPostalCode", "string", length=20),
            FieldDef("MailingCountry", "string", length=80), FieldDef("Birthdate", "date"),
            FieldDef("HasOptedOutOfEmail", "boolean", "Email Opt Out"), FieldDef("Description", "textarea", length=32000),
            _pick(f"{p}Contact_Type__c", CONTACT_TYPES, "Contact Type"),
            _pick(f"{p}Interests__c", INTERESTS, "Interests", multi=True),
            FieldDef(f"{p}Secondary_Email__c", "email", "Secondary Email"),
            FieldDef(f"{p}LinkedIn__c", "url", "LinkedIn"),
            FieldDef(f"{p}Rating__c", "double", "Rating", precision=3, scale=1),
            FieldDef(f"{p}Last_Call_Date__c", "date", "Last Call Date"),
            _pick("Preferred_Language__c", LANGUAGES, "Preferred Language"),
            FieldDef("Assistant_Phone__c", "phone", "Assistant Phone"),
            FieldDef("Newsletter__c", "boolean", "Newsletter"),
            FieldDef("Last_Touch__c", "datetime", "Last Touch"),
            FieldDef("Commission_Split__c", "percent", "Commission Split", precision=5, scale=2)]),
        ObjectDef("AccountContactRelation", "07k", "Account Contact Relationship", "Account Contact Relationships", [
            *_sys(owner=False), _ref("AccountId", "Account", label="Account ID"),
            _ref("ContactId", "Contact", label="Contact ID"), FieldDef("IsDirect", "boolean", updateable=False),
            FieldDef("IsActive", "boolean"), _pick("Roles", ROLES, multi=True),
            FieldDef("StartDate", "date"), FieldDef("EndDate", "date")]),
        ObjectDef("Opportunity", "006", "Opportunity", "Opportunities", [
            *_sys(), FieldDef("Name", "string", length=120, name_field=True),
            _ref("AccountId", "Account", label="Account ID"), _ref("ContactId", "Contact", label="Contact ID"),
            _ref("RecordTypeId", "RecordType", label="Record Type ID"),
            FieldDef("StageName", "picklist", "Stage", length=255, picklist=tuple(stage_names), nillable=False,
                     inactive=tuple(inactive_stages)),
            FieldDef("Amount", "currency", precision=18, scale=2),
            FieldDef("Probability", "percent", "Probability (%)", precision=3, scale=0),
            FieldDef("CloseDate", "date", nillable=False), _pick("Type", DEAL_TYPES, "Opportunity Type"),
            _pick("LeadSource", ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")),
            FieldDef("NextStep", "string"), FieldDef("Description", "textarea", length=32000),
            FieldDef("IsClosed", "boolean", "Closed", updateable=False),
            FieldDef("IsWon", "boolean", "Won", updateable=False),
            _pick("ForecastCategory", ("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")),
            FieldDef("ForecastCategoryName", "picklist", picklist=("Omitted", "Pipeline", "Best Case", "Commit", "Closed")),
            FieldDef("LastStageChangeDate", "datetime", updateable=False),
            _pick(f"{p}Priority__c", PRIORITIES, "Priority"),
            _pick(f"{p}Loss_Reason__c", LOSS_REASONS, "Loss Reason"),
            _pick(f"{p}Deal_Type__c", DEAL_TYPES, "Deal Type"),
            FieldDef(f"{p}Commission__c", "currency", "Commission", precision=16, scale=2),
            FieldDef(f"{p}Commission_Rate__c", "percent", "Commission Rate", precision=5, scale=2),
            FieldDef(f"{p}Listing_Date__c", "date", "Listing Date"),
            _pick(f"{p}Tags__c", DEAL_TAGS, "Tags", multi=True),
            _ref(f"{p}Property__c", f"{p}Property__c", label="Property"),
            FieldDef(f"{p}Square_Feet__c", "double", "Square Feet", precision=12, scale=0),
            FieldDef("Source_Campaign__c", "string", "Source Campaign", length=100),
            _ref("Referral_Contact__c", "Contact", label="Referral Contact"),
            FieldDef("Signed_At__c", "datetime", "Signed At"),
            FieldDef("Board_Approved__c", "boolean", "Board Approved"),
            FieldDef("Data_Room_URL__c", "url", "Data Room URL"),
            FieldDef("Deal_Memo__c", "textarea", "Deal Memo", length=131072)], has_record_types=True),
        ObjectDef("OpportunityHistory", "008", "Opportunity History", "Opportunity History", [
            *_sys(owner=False, modified=False), _ref("OpportunityId", "Opportunity", label="Opportunity ID"),
            FieldDef("StageName", "picklist", "Stage", picklist=tuple(stage_names)),
            FieldDef("Amount", "currency"), FieldDef("ExpectedRevenue", "currency"),
            FieldDef("CloseDate", "date"), FieldDef("Probability", "percent", precision=3, scale=0),
            FieldDef("ForecastCategory", "picklist", picklist=("Omitted", "Pipeline", "BestCase", "Forecast", "Closed")),
            FieldDef("PrevAmount", "currency"), FieldDef("PrevCloseDate", "date")]),
        ObjectDef("Task", "00T", "Task", "Tasks", [
            *_sys(), _ref("WhoId", *who, label="Name ID"), _ref("WhatId", *what, label="Related To ID"),
            _ref("AccountId", "Account", label="Account ID"), FieldDef("Subject", "combobox"),
            FieldDef("Description", "textarea", "Comments", length=32000), FieldDef("ActivityDate", "date", "Due Date Only"),
            _pick("Status", TASK_STATUSES), _pick("Priority", ("High", "Normal", "Low")),
            FieldDef("IsHighPriority", "boolean", "High Priority", updateable=False),
            FieldDef("IsClosed", "boolean", "Closed", updateable=False), FieldDef("CompletedDateTime", "datetime", updateable=False),
            _pick("TaskSubtype", TASK_SUBTYPES, "Task Subtype"), _pick("Type", ("Call", "Email", "Meeting", "Other")),
            FieldDef("CallDurationInSeconds", "int", "Call Duration"), _pick("CallType", ("Internal", "Inbound", "Outbound")),
            FieldDef("CallDisposition", "string", "Call Result")]),
        ObjectDef("Event", "00U", "Event", "Events", [
            *_sys(), _ref("WhoId", *who, label="Name ID"), _ref("WhatId", *what, label="Related To ID"),
            _ref("AccountId", "Account", label="Account ID"), FieldDef("Subject", "combobox"),
            FieldDef("Description", "textarea", length=32000), FieldDef("Location", "string"),
            FieldDef("StartDateTime", "datetime"), FieldDef("EndDateTime", "datetime"),
            FieldDef("ActivityDateTime", "datetime", "Due Date Time"), FieldDef("ActivityDate", "date", "Due Date Only"),
            FieldDef("DurationInMinutes", "int", "Duration"), FieldDef("IsAllDayEvent", "boolean", "All-Day Event"),
            _pick("ShowAs", ("Busy", "OutOfOffice", "Free")), _pick("EventSubtype", ("Event",)),
            _pick("Type", ("Call", "Email", "Meeting", "Other"))]),
        ObjectDef("Note", "002", "Note", "Notes", [
            *_sys(), _ref("ParentId", "Account", "Contact", "Opportunity", rel="Parent", label="Parent ID"),
            FieldDef("Title", "string", length=80, name_field=True), FieldDef("Body", "textarea", length=32000),
            FieldDef("IsPrivate", "boolean", "Private")]),
        ObjectDef("ContentDocument", "069", "Content Document", "Content Documents", [
            *_sys(), FieldDef("Title", "string", length=255, name_field=True),
            FieldDef("FileType", "string", length=20), FieldDef("FileExtension", "string", length=40),
            FieldDef("ContentSize", "int", "Size"), FieldDef("Description", "textarea"),
            _ref("LatestPublishedVersionId", "ContentVersion", label="Latest Published Version ID"),
            _pick("PublishStatus", ("U", "P", "R")), FieldDef("ContentModifiedDate", "datetime")]),
        ObjectDef("ContentVersion", "068", "Content Version", "Content Versions", [
            *_sys(), _ref("ContentDocumentId", "ContentDocument", label="Content Document ID"),
            FieldDef("Title", "string", name_field=True), FieldDef("PathOnClient", "string", length=500),
            FieldDef("FileExtension", "string", length=40), FieldDef("FileType", "string", length=20),
            FieldDef("ContentSize", "int", "Size"), FieldDef("IsLatest", "boolean"),
            FieldDef("VersionNumber", "string", length=20), FieldDef("VersionData", "base64"),
            FieldDef("Checksum", "string", length=50), FieldDef("Description", "textarea"),
            FieldDef("ReasonForChange", "string"), FieldDef("ContentModifiedDate", "datetime"),
            _ref("FirstPublishLocationId", "Account", "Contact", "Opportunity", "User", f"{p}Property__c",
                 rel="FirstPublishLocation")]),
        ObjectDef("ContentNote", "069", "Note", "Notes", [
            *_sys(), FieldDef("Title", "string", name_field=True), FieldDef("Content", "base64"),
            FieldDef("TextPreview", "string"), FieldDef("FileType", "string", length=20),
            FieldDef("FileExtension", "string", length=40), FieldDef("ContentSize", "int"),
            _ref("LatestPublishedVersionId", "ContentVersion"), FieldDef("IsReadOnly", "boolean")]),
        ObjectDef("ContentDocumentLink", "06A", "Content Document Link", "Content Document Links", [
            FieldDef("Id", "id", "Record ID", nillable=False, updateable=False),
            _ref("LinkedEntityId", "Account", "Contact", "Opportunity", "User", f"{p}Property__c",
                 rel="LinkedEntity", label="Linked Entity ID"),
            _ref("ContentDocumentId", "ContentDocument", label="Content Document ID"),
            FieldDef("IsDeleted", "boolean", "Deleted", updateable=False),
            FieldDef("SystemModstamp", "datetime", "System Modstamp", updateable=False),
            _pick("ShareType", ("V", "C", "I")), _pick("Visibility", ("AllUsers", "InternalUsers", "SharedUsers"))]),
        ObjectDef("Attachment", "00P", "Attachment", "Attachments", [
            *_sys(), _ref("ParentId", "Account", "Contact", "Opportunity", "Task", "Event", rel="Parent",
                          label="Parent ID"),
            FieldDef("Name", "string", "File Name", name_field=True), FieldDef("ContentType", "string", length=120),
            FieldDef("BodyLength", "int", "Body Length"), FieldDef("Body", "base64"),
            FieldDef("Description", "textarea", length=500), FieldDef("IsPrivate", "boolean", "Private")]),
    ]
    return {o.name: o for o in objs}


def build_tooling_schema() -> dict[str, ObjectDef]:
    """Tooling API objects (``/tooling/query``)."""
    sys_nd = _sys(owner=False, deleted=False)
    objs = [
        ObjectDef("WorkflowRule", "01Q", "Workflow Rule", "Workflow Rules", [
            *sys_nd, FieldDef("Name", "string", name_field=True), FieldDef("TableEnumOrId", "string"),
            FieldDef("NamespacePrefix", "string"), FieldDef("ManageableState", "string"),
            FieldDef("Description", "textarea")], tooling=True),
        ObjectDef("ValidationRule", "03d", "Validation Rule", "Validation Rules", [
            *sys_nd, FieldDef("ValidationName", "string", name_field=True), FieldDef("EntityDefinitionId", "string"),
            FieldDef("Active", "boolean"), FieldDef("Description", "string"), FieldDef("ErrorDisplayField", "string"),
            FieldDef("ErrorMessage", "string"), FieldDef("NamespacePrefix", "string"),
            FieldDef("ManageableState", "string")], tooling=True),
        ObjectDef("FlowDefinitionView", "300", "Flow Definition View", "Flow Definition Views", [
            FieldDef("Id", "id"), FieldDef("DurableId", "string"), FieldDef("ApiName", "string"),
            FieldDef("Label", "string", name_field=True), FieldDef("Description", "textarea"),
            FieldDef("ProcessType", "picklist", picklist=("AutoLaunchedFlow", "Flow", "Workflow", "InvocableProcess")),
            FieldDef("TriggerType", "picklist", picklist=("RecordAfterSave", "RecordBeforeSave", "RecordBeforeDelete", "Scheduled")),
            FieldDef("IsActive", "boolean"), FieldDef("ActiveVersionId", "string"), FieldDef("LatestVersionId", "string"),
            FieldDef("NamespacePrefix", "string"), FieldDef("TriggerObjectOrEventId", "string"),
            FieldDef("TriggerObjectOrEventLabel", "string"), FieldDef("LastModifiedDate", "datetime"),
            FieldDef("LastModifiedBy", "string"), FieldDef("ManageableState", "string")], tooling=True),
        ObjectDef("ApexTrigger", "01q", "Apex Trigger", "Apex Triggers", [
            *sys_nd, FieldDef("Name", "string", name_field=True), FieldDef("TableEnumOrId", "string"),
            FieldDef("NamespacePrefix", "string"), _pick("Status", ("Active", "Inactive", "Deleted")),
            FieldDef("ApiVersion", "double", precision=18, scale=1), FieldDef("IsValid", "boolean"),
            FieldDef("UsageBeforeInsert", "boolean"), FieldDef("UsageAfterInsert", "boolean"),
            FieldDef("UsageBeforeUpdate", "boolean"), FieldDef("UsageAfterUpdate", "boolean"),
            FieldDef("UsageBeforeDelete", "boolean"), FieldDef("UsageAfterDelete", "boolean"),
            FieldDef("UsageAfterUndelete", "boolean"), FieldDef("UsageIsBulk", "boolean"),
            FieldDef("LengthWithoutComments", "int"), FieldDef("Body", "textarea", length=1000000),
            FieldDef("ManageableState", "string")], tooling=True),
    ]
    return {o.name: o for o in objs}


CHILD_RELATIONSHIPS = {
    ("Account", "ParentId"): "ChildAccounts", ("Contact", "AccountId"): "Contacts",
    ("Opportunity", "AccountId"): "Opportunities", ("AccountContactRelation", "AccountId"): "AccountContactRelations",
    ("AccountContactRelation", "ContactId"): "AccountContactRelations", ("Task", "WhatId"): "Tasks",
    ("Task", "WhoId"): "Tasks", ("Event", "WhatId"): "Events", ("Event", "WhoId"): "Events",
    ("Note", "ParentId"): "Notes", ("Attachment", "ParentId"): "Attachments",
    ("ContentDocumentLink", "LinkedEntityId"): "ContentDocumentLinks",
    ("ContentDocumentLink", "ContentDocumentId"): "ContentDocumentLinks",
    ("ContentVersion", "ContentDocumentId"): "ContentVersions",
    ("OpportunityHistory", "OpportunityId"): "OpportunityHistories",
}


def describe_object(obj: ObjectDef, schema: dict[str, ObjectDef], version: str,
                    record_types: list[dict[str, Any]] | None = None, tooling: bool = False) -> dict[str, Any]:
    """``GET /sobjects/{obj}/describe``."""
    base = f"/services/data/v{version}/{'tooling/' if tooling else ''}sobjects/{obj.name}"
    children = []
    for other in schema.values():
        for f in other.fields:
            if f.type == "reference" and obj.name in f.reference_to and f.name not in {"CreatedById", "LastModifiedById"}:
                children.append({
                    "cascadeDelete": other.name in {"Contact", "AccountContactRelation", "ContentDocumentLink"},
                    "childSObject": other.name, "deprecatedAndHidden": False, "field": f.name,
                    "junctionIdListNames": [], "junctionReferenceTo": [],
                    "relationshipName": CHILD_RELATIONSHIPS.get((other.name, f.name)) or (
                        other.label_plural.replace(" ", "") + "__r" if other.custom else None),
                    "restrictedDelete": False})
    rtis = [{"active": True, "available": True, "defaultRecordTypeMapping": i == 0,
             "developerName": rt["DeveloperName"], "master": False, "name": rt["Name"],
             "recordTypeId": rt["Id"], "urls": {"layout": f"{base}/describe/layouts/{rt['Id']}"}}
            for i, rt in enumerate(record_types or [])]
    rtis.append({"active": True, "available": True, "defaultRecordTypeMapping": not rtis,
                 "developerName": "Master", "master": True, "name": "Master", "recordTypeId": MASTER_RECORD_TYPE,
                 "urls": {"layout": f"{base}/describe/layouts/{MASTER_RECORD_TYPE}"}})
    return {
        "actionOverrides": [], "activateable": False, "associateEntityType": None, "associateParentEntity": None,
        "childRelationships": children, "compactLayoutable": True, "createable": not tooling,
        "custom": obj.custom, "customSetting": False, "deepCloneable": False, "defaultImplementation": None,
        "deletable": not tooling, "deprecatedAndHidden": False, "extendedBy": None, "extendsInterfaces": None,
        "feedEnabled": obj.name in {"Account", "Contact", "Opportunity"}, "fields": [f.describe() for f in obj.fields],
        "hasSubtypes": False, "implementedBy": None, "implementsInterfaces": None, "isInterface": False,
        "isSubtype": False, "keyPrefix": obj.key_prefix, "label": obj.label, "labelPlural": obj.label_plural,
        "layoutable": True, "listviewable": None, "lookupLayoutable": None, "mergeable": obj.name in {"Account", "Contact"},
        "mruEnabled": True, "name": obj.name, "namedLayoutInfos": [], "networkScopeFieldName": None,
        "queryable": obj.queryable, "recordTypeInfos": rtis if obj.has_record_types else rtis[-1:],
        "replicateable": True, "retrieveable": True, "searchLayoutable": True, "searchable": True,
        "sobjectDescribeOption": "FULL", "supportedScopes": [{"label": "All records", "name": "everything"}],
        "triggerable": True, "undeletable": not tooling, "updateable": not tooling,
        "urls": {"compactLayouts": f"{base}/describe/compactLayouts", "rowTemplate": f"{base}/{{ID}}",
                 "approvalLayouts": f"{base}/describe/approvalLayouts", "describe": f"{base}/describe",
                 "quickActions": f"{base}/quickActions", "layouts": f"{base}/describe/layouts", "sobject": base},
    }


def describe_global_entry(obj: ObjectDef, version: str, tooling: bool = False) -> dict[str, Any]:
    base = f"/services/data/v{version}/{'tooling/' if tooling else ''}sobjects/{obj.name}"
    return {
        "activateable": False, "associateEntityType": None, "associateParentEntity": None,
        "createable": not tooling, "custom": obj.custom, "customSetting": False, "deepCloneable": False,
        "deletable": not tooling, "deprecatedAndHidden": False, "feedEnabled": obj.name in {"Account", "Contact", "Opportunity"},
        "hasSubtypes": False, "isInterface": False, "isSubtype": False, "keyPrefix": obj.key_prefix,
        "label": obj.label, "labelPlural": obj.label_plural, "layoutable": True, "mergeable": False,
        "mruEnabled": True, "name": obj.name, "queryable": obj.queryable, "replicateable": True,
        "retrieveable": True, "searchable": True, "triggerable": True, "undeletable": not tooling,
        "updateable": not tooling,
        "urls": {"rowTemplate": f"{base}/{{ID}}", "describe": f"{base}/describe", "sobject": base},
    }
