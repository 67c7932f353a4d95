"""The double-entry ledger: accounts, transfers, the hash chain, and their storage."""
