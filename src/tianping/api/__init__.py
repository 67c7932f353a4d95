"""The HTTP API: FastAPI routes over the ledger's use cases (see README.md beside this file)."""

from tianping.api.app import create_app

__all__ = ["create_app"]
