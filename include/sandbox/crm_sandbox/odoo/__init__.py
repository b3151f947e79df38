"""Odoo 17 Community RPC sandbox (XML-RPC, JSON-RPC), faithful to captures; ``--version 19`` serves the 19.0
schema and default records captured from a real 19.0 (:mod:`.capture`) and adds JSON-2.

``from crm_sandbox.odoo.server import OdooSandbox, serve``.
"""
