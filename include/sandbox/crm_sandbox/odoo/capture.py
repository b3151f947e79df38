"""Capture the sandbox's reference data from a running real Odoo: ``fields.json`` (``fields_get`` of the
emulated models) and ``records.json`` (the default records a migration resolves), in the shape the sandbox
loads (:mod:`.store`). Read-only: it calls ``fields_get``, ``search_read``, ``default_get`` and
``check_object_reference`` as admin, nothing else.

    python -m crm_sandbox.odoo.capture --server odoo19 --out include/sandbox/crm_sandbox/odoo/data
    python -m crm_sandbox.odoo.capture --url http://127.0.0.1:8069 --db mydb --password admin --out /tmp/cap

``--server odoo17|odoo19`` starts the real server of ``../shared`` if needed (:class:`crm_sandbox.targets.RealOdoo`),
captures from a fresh copy of its template database and drops it after. Files are written as
``fields<V>.json`` / ``records<V>.json`` (``V`` = the server's major version; nothing for 17, whose captures
are ``fields.json`` / ``records.json``), pretty-printed with sorted keys.
"""

from __future__ import annotations

import argparse
import json
import sys
import xmlrpc.client
from pathlib import Path
from typing import Any

from .testing import post_json

#: the models whose ``fields_get`` the sandbox loads (data/fields.json)
MODELS = ("calendar.event", "crm.lead", "crm.lost.reason", "crm.stage", "crm.tag", "crm.team", "ir.attachment",
          "ir.model", "ir.model.data", "ir.model.fields", "ir.model.fields.selection", "mail.activity",
          "mail.activity.type", "mail.message", "mail.message.subtype", "res.company", "res.country",
          "res.country.state", "res.partner", "res.users", "utm.medium", "utm.source")
#: the attributes asked of ``fields_get`` (Odoo drops the names it does not know)
ATTRIBUTES = ("type", "string", "required", "readonly", "store", "relation", "relation_field", "selection",
              "searchable", "sortable", "company_dependent", "translate", "size", "digits", "related", "depends",
              "groups", "manual")

#: records.json key -> (model, domain, fields, order); a field the target lacks is left out (17: ``team_id``,
#: 19: ``team_ids``), a model it lacks leaves the key out (19 has no res.partner.title)
RECORDS: dict[str, tuple[str, list[Any], tuple[str, ...], str]] = {
    "crm.lost.reason": ("crm.lost.reason", [], ("active", "name"), "id"),
    "crm.stage": ("crm.stage", [], ("fold", "is_won", "name", "requirements", "sequence", "team_id", "team_ids"),
                  "id"),
    "crm.tag": ("crm.tag", [], ("color", "name"), "id"),
    "crm.team": ("crm.team", [], ("active", "alias_name", "company_id", "member_ids", "name", "sequence",
                                  "use_leads", "use_opportunities", "user_id"), "id"),
    "ir.model": ("ir.model", [("model", "in", ["calendar.event", "crm.lead", "crm.lost.reason", "crm.stage",
                                               "crm.tag", "crm.team", "ir.attachment", "mail.activity",
                                               "mail.message", "res.company", "res.partner", "res.users"])],
                 ("model", "name", "state", "transient"), "model"),
    "ir.module.module (installed)": ("ir.module.module", [("state", "=", "installed")],
                                     ("installed_version", "latest_version", "name"), "name"),
    "mail.activity.type": ("mail.activity.type", [], ("active", "category", "chaining_type", "delay_count",
                                                      "delay_unit", "icon", "name", "res_model", "sequence"), "id"),
    "mail.message.subtype": ("mail.message.subtype", [], ("default", "hidden", "internal", "name", "parent_id",
                                                          "relation_field", "res_model", "sequence"), "id"),
    "res.company": ("res.company", [], ("country_id", "currency_id", "email", "name", "parent_id", "partner_id"),
                    "id"),
    "res.country": ("res.country", [], ("code", "currency_id", "name", "phone_code"), "id"),
    "res.country.state (US, CA, DE)": ("res.country.state", [("country_id.code", "in", ["US", "CA", "DE"])],
                                       ("code", "country_id", "name"), "country_id, code"),
    "res.currency (active)": ("res.currency", [("active", "=", True)], ("active", "name", "symbol"), "id"),
    "res.groups (crm/sales/base user)": ("res.groups", None, ("full_name", "name"), "id"),
    "res.partner": ("res.partner", [], ("active", "company_id", "display_name", "email", "is_company", "name",
                                        "type", "user_ids"), "id"),
    "res.partner.category": ("res.partner.category", [], ("name", "color"), "id"),
    "res.partner.title": ("res.partner.title", [], ("name", "shortcut"), "id"),
    "res.users": ("res.users", [], ("active", "company_id", "email", "lang", "login", "name", "partner_id", "share",
                                    "tz"), "id"),
    "utm.campaign": ("utm.campaign", [], ("name",), "id"),
    "utm.medium": ("utm.medium", [], ("active", "name"), "id"),
    "utm.source": ("utm.source", [], ("name",), "id"),
}
#: the groups of ``res.groups (crm/sales/base user)``, by xmlid
GROUPS = ("base.group_user", "base.group_portal", "base.group_public", "sales_team.group_sale_salesman",
          "sales_team.group_sale_salesman_all_leads", "sales_team.group_sale_manager")
#: the xmlids whose ``check_object_reference`` answer is kept
XMLIDS = ("base.USD", "base.group_user", "base.main_company", "base.main_partner", "base.model_res_partner",
          "base.partner_admin", "base.public_user", "base.state_us_5", "base.us", "base.user_admin", "base.user_root",
          "crm.model_crm_lead", "crm.mt_lead_create", "crm.mt_lead_lost", "crm.mt_lead_stage", "crm.mt_lead_won",
          "crm.stage_lead1", "crm.stage_lead2", "crm.stage_lead3", "crm.stage_lead4",
          "mail.mail_activity_data_call", "mail.mail_activity_data_email", "mail.mail_activity_data_meeting",
          "mail.mail_activity_data_todo", "mail.mail_activity_data_upload_file", "mail.mail_activity_data_warning",
          "mail.mt_activities", "mail.mt_comment", "mail.mt_note", "sales_team.team_sales_department",
          "utm.utm_source_mailing")
#: the models whose ``default_get`` (admin, empty context) is kept
DEFAULT_GET = ("calendar.event", "crm.lead", "ir.attachment", "mail.activity", "mail.message", "res.partner")


class CaptureError(RuntimeError):
    """The server refused a call the capture needs (the message names the call)."""


class Client:
    """``execute_kw`` as admin over JSON-RPC (``/jsonrpc``), and the same call over XML-RPC for comparison."""

    def __init__(self, url: str, db: str, login: str = "admin", password: str = "admin") -> None:
        self.url, self.db, self.password = url.rstrip("/"), db, password
        self.uid = self._jsonrpc("common", "authenticate", [db, login, password, {}])
        if not self.uid:
            raise CaptureError(f"login {login!r} refused on database {db!r} at {self.url}")
        self.xmlrpc = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object")

    def _jsonrpc(self, service: str, method: str, args: list[Any]) -> Any:
        status, body, _ = post_json(f"{self.url}/jsonrpc", {"jsonrpc": "2.0", "method": "call", "id": 1,
                                                             "params": {"service": service, "method": method,
                                                                        "args": args}})
        if status != 200 or not isinstance(body, dict):
            raise CaptureError(f"{service}.{method}: HTTP {status}")
        if "error" in body:
            data = body["error"].get("data") or {}
            raise CaptureError(f"{service}.{method}{args[3:5] if service == 'object' else ''}: "
                               f"{data.get('name', '')}: {data.get('message', body['error'])}")
        return body.get("result")

    def __call__(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        return self._jsonrpc("object", "execute_kw", [self.db, self.uid, self.password, model, method, list(args),
                                                      kwargs])

    def xml(self, model: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """The same call over XML-RPC: its answer, or ``"Fault N: <last line>"``."""
        try:
            return self.xmlrpc.execute_kw(self.db, self.uid, self.password, model, method, list(args), kwargs)
        except xmlrpc.client.Fault as fault:
            return f"Fault {fault.faultCode}: {fault.faultString.strip().splitlines()[-1]}"

    def version(self) -> dict[str, Any]:
        return self._jsonrpc("common", "version", [])


def capture_fields(client: Client) -> dict[str, Any]:
    """``{model: fields_get(attributes=ATTRIBUTES)}`` of :data:`MODELS`."""
    return {model: client(model, "fields_get", attributes=list(ATTRIBUTES)) for model in MODELS}


def _xmlids(client: Client, model: str, ids: list[int]) -> dict[int, str]:
    """``id -> module.name`` (the first xmlid by id where a record has several)."""
    out: dict[int, str] = {}
    for r in client("ir.model.data", "search_read", [("model", "=", model), ("res_id", "in", ids)],
                    fields=["module", "name", "res_id"], order="id"):
        out.setdefault(r["res_id"], f"{r['module']}.{r['name']}")
    return out


def capture_records(client: Client, fields: dict[str, Any]) -> dict[str, Any]:
    """The default records (:data:`RECORDS`), ``check_object_reference`` answers and ``default_get`` results."""
    out: dict[str, Any] = {}
    known_models = {r["model"] for r in client("ir.model", "search_read", [], fields=["model"])}
    for key, (model, domain, wanted, order) in RECORDS.items():
        if model not in known_models:
            continue
        have = fields.get(model) or client(model, "fields_get", attributes=["type"])
        names = [f for f in wanted if f in have]
        if domain is None:   # groups by xmlid
            ids = [client("ir.model.data", "check_object_reference", *x.split(".", 1))[1] for x in GROUPS]
            domain = [("id", "in", ids)]
        rows = client(model, "search_read", domain, fields=names, order=order, context={"active_test": False})
        xmlids = _xmlids(client, model, [r["id"] for r in rows])
        if model == "res.country.state":   # its country's code, as the 17 capture kept it
            codes = {c["id"]: c["code"] for c in client("res.country", "search_read", [], fields=["code"])}
            rows = [{**r, "country_code": codes[r["country_id"][0]]} for r in rows]
        out[key] = rows if model == "ir.module.module" else [{**r, "xmlid": xmlids.get(r["id"], False)}
                                                             for r in rows]
    refs: dict[str, Any] = {}
    for xmlid in XMLIDS:
        got = client.xml("ir.model.data", "check_object_reference", *xmlid.split(".", 1))
        refs[xmlid] = got
    out["check_object_reference"] = refs
    defaults: dict[str, Any] = {}
    for model in DEFAULT_GET:
        names = sorted(fields[model])
        got = client(model, "default_get", names)
        over_xml = client.xml(model, "default_get", names)
        defaults[model] = {"jsonrpc_result": got, "keys with null value": sorted(k for k, v in got.items() if v is None),
                           "same call over xmlrpc": True if isinstance(over_xml, dict) else over_xml}
    out["default_get (admin, empty context)"] = defaults
    out["_notes"] = {"captured by": "python -m crm_sandbox.odoo.capture (admin, a fresh database without demo data)",
                     "server_version": client.version().get("server_version")}
    return out


def write(out_dir: Path, version: int, fields: dict[str, Any], records: dict[str, Any]) -> list[Path]:
    suffix = "" if version == 17 else str(version)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for stem, data in (("fields", fields), ("records", records)):
        path = out_dir / f"{stem}{suffix}.json"
        path.write_text(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
        paths.append(path)
    return paths


def capture(client: Client) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """``(major version, fields, records)`` of the server behind ``client``."""
    version = int(client.version()["server_version_info"][0])
    fields = capture_fields(client)
    return version, fields, capture_records(client, fields)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m crm_sandbox.odoo.capture", description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--server", choices=("odoo17", "odoo19"), help="a real server of ../shared (fresh database)")
    where.add_argument("--url", help="a running Odoo (with --db)")
    parser.add_argument("--db")
    parser.add_argument("--login", default="admin")
    parser.add_argument("--password", default="admin")
    parser.add_argument("--out", type=Path, required=True, help="folder the files are written to")
    args = parser.parse_args(argv)
    if args.server:
        from crm_sandbox.targets import RealOdoo

        real = RealOdoo(args.server).start()
        db = real.new_db("capture")
        try:
            version, fields, records = capture(Client(real.url, db, args.login, args.password))
        finally:
            real.drop_db(db)
            real.stop()
    else:
        if not args.db:
            parser.error("--url needs --db")
        version, fields, records = capture(Client(args.url, args.db, args.login, args.password))
    for path in write(args.out, version, fields, records):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
