"""Storage adapters of the ledger (SQL for SQLite and PostgreSQL)."""
