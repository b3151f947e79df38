"""Airflow provider that migrates Apto and Link app CRM data into Odoo CRM."""

from __future__ import annotations

__version__ = "0.1.0"
