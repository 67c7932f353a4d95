"""Errors the ledger raises for whole requests (per-event outcomes are result codes instead).

    LedgerError                      every ledger error; carries a stable `code`
    ├── BatchTooLarge                more events than one batch may hold
    ├── AccountNotFound              a query names an account that does not exist
    ├── HistoryNotEnabled            balance history asked of an account without the history flag
    └── InvalidQuery                 a query's bounds or page size are out of range

The edges (HTTP, CLI) map each `code` to a response once, in one place.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of the ledger's request-level errors."""

    code = "ledger_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BatchTooLarge(LedgerError):
    """Raised when a batch holds more events than `limits.*_PER_BATCH_MAX`; nothing is written."""

    code = "batch_too_large"


class AccountNotFound(LedgerError):
    """Raised by queries about one account when no account has that id."""

    code = "account_not_found"


class HistoryNotEnabled(LedgerError):
    """Raised when balance history is asked of an account created without the `history` flag."""

    code = "history_not_enabled"


class InvalidQuery(LedgerError):
    """Raised when a query's time bounds, page size or filters are out of range."""

    code = "invalid_query"
