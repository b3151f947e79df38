"""Odoo 17 Community RPC sandbox (XML-RPC, JSON-RPC, JSON-2 with ``--version 19``), faithful to captures.

``from crm_sandbox.odoo.server import OdooSandbox, serve``.
"""
