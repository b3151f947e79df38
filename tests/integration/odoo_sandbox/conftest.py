"""Fixtures: one Odoo sandbox server per module, reset before every test; an RPC client."""

from __future__ import annotations

import pytest

from crm_sandbox.odoo.testing import Rpc


@pytest.fixture(scope="module")
def odoo_server():
    from crm_sandbox.odoo.server import serve

    server = serve(port=0)
    yield server
    server.stop()


@pytest.fixture
def odoo(odoo_server):
    """The sandbox state, reset to a fresh database for this test."""
    odoo_server.state.reset()
    return odoo_server.state


@pytest.fixture
def rpc(odoo_server, odoo) -> Rpc:
    return Rpc(odoo_server.url)
