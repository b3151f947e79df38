"""Apto sandbox: a Salesforce-REST-shaped server over a generated Apto (McLabs2) org."""

from __future__ import annotations
