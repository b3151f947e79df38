"""Local stand-ins for the systems a migration talks to: sandbox servers and a private PostgreSQL.

Nothing in ``crm_migration`` imports this package; it exists for tests, benchmarks and the demo.
"""
