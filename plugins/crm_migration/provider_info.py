"""Provider metadata for Airflow (the ``apache_airflow_provider`` entry point).

Connection forms are declared here (``conn-fields`` / ``ui-field-behaviour``), so the UI shows them
without importing the hooks; secrets use ``format: password`` and are masked.
"""

from __future__ import annotations

from typing import Any

from crm_migration import __version__

_STR = {"type": ["string", "null"]}


def _field(label: str, description: str, *, secret: bool = False, default: Any = None,
           enum: list[str] | None = None, kind: str = "string") -> dict[str, Any]:
    schema: dict[str, Any] = {"type": [kind, "null"]}
    if secret:
        schema["format"] = "password"
    if default is not None:
        schema["default"] = default
    if enum:
        schema["enum"] = enum
    return {"label": label, "description": description, "schema": schema}


CONNECTION_TYPES: list[dict[str, Any]] = [
    {
        "connection-type": "apto",
        "hook-class-name": "crm_migration.hooks.apto.AptoHook",
        "hook-name": "Apto (Salesforce)",
        "conn-fields": {
            "auth": _field("OAuth flow", "client_credentials, password or jwt",
                           default="client_credentials", enum=["client_credentials", "password", "jwt"]),
            "username": _field("Username", "Salesforce username (password and jwt flows)"),
            "security_token": _field("Security token", "Appended to the password (password flow)",
                                     secret=True),
            "private_key": _field("JWT private key", "PEM private key of the connected app (jwt flow)",
                                  secret=True),
            "api_version": _field("API version", "Salesforce REST API version", default="60.0"),
            "namespace": _field("Package namespace", "Override; discovered from the org when empty"),
            "max_api_share": _field("Max API share", "Stop at this share of the daily API limit",
                                    default=0.8, kind="number"),
            "client_id": _field("Client id (password flow)", "Connected app consumer key when Login holds "
                                "the username"),
            "client_secret": _field("Client secret (password flow)", "Connected app consumer secret when "
                                    "Password holds the user's password", secret=True),
            "password": _field("User password (password flow)", "The user's password when Login/Password "
                                "hold the client id and secret", secret=True),
            "audience": _field("JWT audience", "Login host for the JWT assertion, e.g. "
                               "https://login.salesforce.com (default: the org URL)"),
            "batch_size": _field("Query page size", "Sforce-Query-Options batchSize, 200..2000", kind="integer"),
            "bulk_threshold": _field("Bulk API threshold", "Records from which a full read of an object goes "
                                     "through a Bulk API 2.0 query job instead of REST", default=50000,
                                     kind="integer"),
            "bulk_timeout": _field("Bulk job timeout (s)", "Seconds a Bulk API 2.0 query job may take to "
                                   "complete before it is aborted", default=3600, kind="number"),
            "timeout": _field("Timeout (s)", "Per-request timeout in seconds", default=60, kind="number"),
            "download_workers": _field("Download workers", "Files a load downloads at a time (1-32)", default=8,
                                       kind="integer"),
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "extra"],
            "relabeling": {"host": "Org URL", "login": "Client id or username",
                           "password": "Client secret or password"},
            "placeholders": {"host": "https://mycompany.my.salesforce.com",
                             "login": "3MVG9... (connected app consumer key)"},
        },
    },
    {
        "connection-type": "link_app",
        "hook-class-name": "crm_migration.hooks.link_app.LinkAppHook",
        "hook-name": "Link app",
        "conn-fields": {
            "page_size": _field("Page size", "Records per page (1-500)", default=100, kind="integer"),
            "timeout": _field("Timeout (s)", "Per-request timeout in seconds", default=30, kind="number"),
            "download_workers": _field("Download workers", "Files a load downloads at a time (1-32)", default=8,
                                       kind="integer"),
        },
        "ui-field-behaviour": {
            "hidden-fields": ["schema", "port", "login", "extra"],
            "relabeling": {"host": "Base URL", "password": "API token"},
            "placeholders": {"host": "https://mytenant.linkapp.example"},
        },
    },
    {
        "connection-type": "odoo",
        "hook-class-name": "crm_migration.hooks.odoo.OdooHook",
        "hook-name": "Odoo",
        "conn-fields": {
            "transport": _field("Transport", "auto picks JSON-2 on Odoo 19+ (API key), else JSON-RPC",
                                default="auto", enum=["auto", "xmlrpc", "jsonrpc", "json2"]),
            "fallback_user": _field("Fallback user", "Login of the Odoo user that receives records "
                                    "whose source owner matches no Odoo user"),
        },
        "ui-field-behaviour": {
            "hidden-fields": ["port", "extra"],
            "relabeling": {"host": "Odoo URL", "schema": "Database", "password": "Password or API key"},
            "placeholders": {"host": "https://mycompany.odoo.com", "schema": "mycompany"},
        },
    },
]


#: ``[crm_migration]`` options (``airflow config get-value crm_migration reports_base``)
CONFIG: dict[str, Any] = {
    "crm_migration": {
        "description": "CRM migration (Apto, Link app -> Odoo).",
        "options": {
            "reports_base": {
                "description": "Where the reports (plan, diff, reconciliation, rollback, audit summary) are "
                               "written, through Airflow's ObjectStoragePath: a local folder, file:///..., "
                               "s3://bucket/prefix, gs://bucket/prefix (with the provider installed), or "
                               "s3://<conn_id>@bucket/prefix to name the connection holding the credentials. "
                               "Empty: $AIRFLOW_HOME/crm_migration_reports.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "s3://aws_default@my-bucket/crm-migration/reports",
                "default": "",
            },
            "pairs_folder": {
                "description": "A folder of your own mapping files (<pair>.yaml): build_pair_dags(\"<pair>\") "
                               "reads <pairs_folder>/<pair>.yaml when it exists, else the bundled include/pairs "
                               "file. Workers and the DAG processor need the same folder. Empty: the bundled "
                               "pairs only.",
                "version_added": "0.1.0",
                "type": "string",
                "example": "/opt/airflow/include/my_pairs",
                "default": "",
            },
        },
    },
}


def get_provider_info() -> dict[str, Any]:
    return {
        "package-name": "airflow-crm-migration",
        "name": "CRM migration (Apto, Link app → Odoo)",
        "description": "Migrate Apto (Salesforce) and Link app CRM data into Odoo CRM: sample run, "
                       "field-level diff, delta syncs, audit log and rollback.",
        "versions": [__version__],
        "connection-types": CONNECTION_TYPES,
        "config": CONFIG,
    }
