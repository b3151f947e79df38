"""Odoo's exceptions as they reach an RPC client, with plausible server tracebacks.

XML-RPC fault codes (Odoo 17 ``odoo/service/wsgi_server.py``): 1 any other exception (the
faultString is the full traceback), 2 UserError / ValidationError / MissingError (bare message),
3 AccessDenied, 4 AccessError.
"""

from __future__ import annotations

from typing import Any

_FRAMES = [
    ("/usr/lib/python3/dist-packages/odoo/addons/base/controllers/rpc.py", 149, "xmlrpc_2",
     "response = self._xmlrpc(service)"),
    ("/usr/lib/python3/dist-packages/odoo/addons/base/controllers/rpc.py", 129, "_xmlrpc",
     "result = dispatch_rpc(service, method, params)"),
    ("/usr/lib/python3/dist-packages/odoo/http.py", 368, "dispatch_rpc",
     "return dispatch(method, params)"),
    ("/usr/lib/python3/dist-packages/odoo/service/model.py", 37, "dispatch",
     "res = execute_kw(db, uid, *params[3:])"),
    ("/usr/lib/python3/dist-packages/odoo/service/model.py", 59, "execute_kw",
     "return execute(db, uid, obj, method, *args, **kw or {})"),
    ("/usr/lib/python3/dist-packages/odoo/service/model.py", 65, "execute",
     "res = execute_cr(cr, uid, obj, method, *args, **kw)"),
    ("/usr/lib/python3/dist-packages/odoo/service/model.py", 50, "execute_cr",
     "result = retrying(partial(odoo.api.call_kw, recs, method, args, kw), env)"),
    ("/usr/lib/python3/dist-packages/odoo/service/model.py", 134, "retrying",
     "result = func()"),
    ("/usr/lib/python3/dist-packages/odoo/api.py", 466, "call_kw",
     "result = _call_kw_model_create(method, model, args, kwargs)"),
    ("/usr/lib/python3/dist-packages/odoo/api.py", 437, "_call_kw_model_create",
     "result = method(recs, *args, **kwargs)"),
    ("<decorator-gen-212>", 2, "create", ""),
    ("/usr/lib/python3/dist-packages/odoo/api.py", 414, "_model_create_multi",
     "return create(self, arg)"),
    ("/usr/lib/python3/dist-packages/odoo/addons/mail/models/mail_thread.py", 262, "create",
     "threads = super(MailThread, self).create(vals_list)"),
    ("/usr/lib/python3/dist-packages/odoo/models.py", 4496, "create",
     "records = self._create(data_list)"),
    ("/usr/lib/python3/dist-packages/odoo/models.py", 4703, "_create",
     "cr.execute(SQL("),
    ("/usr/lib/python3/dist-packages/odoo/sql_db.py", 332, "execute",
     "res = self._obj.execute(query, params)"),
    ("/usr/lib/python3/dist-packages/odoo/fields.py", 1228, "__set__",
     "records.write({self.name: write_value})"),
    ("/usr/lib/python3/dist-packages/odoo/models.py", 4147, "write",
     "field.write(self, value)"),
    ("/usr/lib/python3/dist-packages/odoo/models.py", 3103, "_read_format",
     "vals[name] = convert(record[name], record, use_display_name)"),
]


class OdooError(Exception):
    """An exception raised inside the emulated Odoo server.

    :param message: ``str(exception)`` as Odoo would give it.
    :param tb_lines: number of lines of the generated traceback (XML-RPC fault 1 / JSON-RPC debug).
    """

    code = 1
    module = "builtins"
    type_name = "Exception"

    def __init__(self, message: str, *, tb_lines: int | None = None, arguments: list[Any] | None = None,
                 json_tb_lines: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.tb_lines = tb_lines
        self.json_tb_lines = json_tb_lines
        self.arguments = [message] if arguments is None else arguments

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.type_name}" if self.module else self.type_name

    @property
    def exception_line(self) -> str:
        """The traceback's final ``Type: message`` text (possibly several lines)."""
        name = self.type_name if self.module == "builtins" else self.qualname
        return f"{name}: {self.message}" if self.message != "" else name

    def traceback(self, lines: int | None = None) -> str:
        """Return a plausible multi-line server traceback ending with :attr:`exception_line`."""
        total = lines or self.tb_lines or 40        # lines before the blank one a psycopg2 message ends with
        tail = self.exception_line.rstrip("\n").split("\n")
        body: list[str] = []
        room = max(total - 1 - len(tail), 0)
        i = 0
        while len(body) + 2 <= room:
            path, line, func, code = _FRAMES[i % len(_FRAMES)]
            body.append(f'  File "{path}", line {line + i // len(_FRAMES)}, in {func}')
            body.append(f"    {code or 'pass'}")
            i += 1
        if len(body) < room:
            body.append("    ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^")
        end = "\n\n" if self.exception_line.endswith("\n") else "\n"
        return "\n".join(["Traceback (most recent call last):", *body, *tail]) + end

    def json_error(self) -> dict[str, Any]:
        """The JSON-RPC ``error`` object Odoo 17 answers with."""
        return {"code": 200, "message": "Odoo Server Error", "data": self.json_data()}

    def json_data(self) -> dict[str, Any]:
        # the JSON-RPC route adds ~15 frames-lines above the XML-RPC ones (captured: 98 vs 83)
        lines = self.json_tb_lines or (self.tb_lines + 15 if self.tb_lines else None)
        return {"name": self.qualname, "debug": self.traceback(lines), "message": self.message,
                "arguments": list(self.arguments), "context": {}}

    def xmlrpc_fault(self) -> tuple[int, str]:
        """``(faultCode, faultString)`` for ``/xmlrpc/2``."""
        if self.code == 1:
            return 1, self.traceback()
        return self.code, self.message

    def legacy_fault(self) -> tuple[str, str]:
        """``(faultCode, faultString)`` for the legacy ``/xmlrpc`` endpoints (string fault codes)."""
        if isinstance(self, AccessDenied):
            return "AccessDenied", self.message
        if isinstance(self, (MissingError, AccessError)):
            return f"warning -- {self.type_name}\n\n{self.message}", ""
        if isinstance(self, UserError):
            return f"warning -- UserError\n\n{self.message}", ""
        return self.message, self.traceback()


class PyError(OdooError):
    """A non-Odoo exception (``ValueError``, ``KeyError``, psycopg2 errors …): fault code 1."""

    def __init__(self, type_name: str, message: str, *, module: str = "builtins", tb_lines: int | None = None,
                 arguments: list[Any] | None = None) -> None:
        super().__init__(message, tb_lines=tb_lines, arguments=arguments)
        self.type_name, self.module = type_name, module


class UserError(OdooError):
    code = 2
    module = "odoo.exceptions"
    type_name = "UserError"


class ValidationError(UserError):
    type_name = "ValidationError"


class MissingError(UserError):
    type_name = "MissingError"


class AccessError(UserError):
    code = 4
    type_name = "AccessError"


class LockError(UserError):
    """Odoo 19: records could not be locked (JSON-2 answers HTTP 409)."""

    type_name = "LockError"


class Unauthorized(OdooError):
    """Odoo 19's JSON-2 answer to a missing or wrong API key (HTTP 401)."""

    module = "werkzeug.exceptions"
    type_name = "Unauthorized"


class AccessDenied(OdooError):
    code = 3
    module = "odoo.exceptions"
    type_name = "AccessDenied"

    def __init__(self, message: str = "Access Denied", **kw: Any) -> None:
        super().__init__(message, **kw)


def value_error(message: str, tb_lines: int | None = None) -> PyError:
    return PyError("ValueError", message, tb_lines=tb_lines)


def key_error(key: str, tb_lines: int | None = None) -> PyError:
    return PyError("KeyError", repr(key), tb_lines=tb_lines, arguments=[key])


def type_error(message: str, tb_lines: int | None = None) -> PyError:
    return PyError("TypeError", message, tb_lines=tb_lines)


def psycopg_error(type_name: str, message: str, tb_lines: int | None = None) -> PyError:
    """A PostgreSQL error as psycopg2 words it: the server's message ends with a newline (so the
    traceback ends with a blank line, and JSON-RPC's ``message`` with ``\\n``)."""
    module, _, name = type_name.rpartition(".")
    return PyError(name, message if message.endswith("\n") else message + "\n", module=module, tb_lines=tb_lines)


def serialization_failure() -> PyError:
    """PostgreSQL's concurrent-update failure as Odoo reports it once its retries are exhausted."""
    return psycopg_error("psycopg2.errors.SerializationFailure",
                         "could not serialize access due to concurrent update", tb_lines=38)


def unknown_database(db: str, tb_lines: int = 65) -> PyError:
    return psycopg_error(
        "psycopg2.OperationalError",
        f'connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "{db}" does not exist',
        tb_lines=tb_lines)


def missing_error(model: str, ids: list[Any], uid: int) -> MissingError:
    return MissingError("Record does not exist or has been deleted.\n"
                        f"(Record: {model}{tuple(ids)!r}, User: {uid})", json_tb_lines=70)


def mandatory_error(model_desc: str, model: str, field_string: str, field: str, *,
                    version: int = 17) -> ValidationError:
    if version >= 19:  # as the real 19.0 words it (captured over JSON-2: 422 ValidationError)
        return ValidationError(
            f"The operation cannot be completed: Missing required value for the field '{field_string}' ({field}).\n"
            f"Model: '{model_desc}' ({model})\n- create/update: a mandatory field is not set\n"
            "- delete: another model requires the record being deleted, you can archive it instead\n",
            json_tb_lines=94)
    return ValidationError(
        "The operation cannot be completed:\n- Create/update: a mandatory field is not set.\n"
        "- Delete: another model requires the record being deleted. If possible, archive it instead.\n\n"
        f"Model: {model_desc} ({model})\nField: {field_string} ({field})\n", json_tb_lines=94)


def fk_error(model_desc: str, model: str, constraint: str) -> ValidationError:
    return ValidationError(
        "The operation cannot be completed: another model requires the record being deleted. "
        "If possible, archive it instead.\n\n"
        f"Model: {model_desc} ({model})\nConstraint: {constraint}\n")
