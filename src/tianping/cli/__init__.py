"""The `tianping` command line: Typer commands with Rich output (see README.md here).

`tianping.cli.main.app` is the entry point declared in pyproject.toml. Modules:

- `main`: the root group, global options and the one place errors become `error:` lines;
- `common`: exit codes, error mapping, settings, parsing and output helpers;
- `db_commands`, `ledger_commands`, `audit_commands`: the `db`, `ledger` and `audit` groups;
- `serve`: `tianping serve` (uvicorn, with the API imported lazily);
- `demo`: `tianping demo`, a simulated day on a fresh SQLite ledger.
"""
