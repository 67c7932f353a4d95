"""tianping.config: defaults, environment, TOML file and override precedence."""

from __future__ import annotations

from pathlib import Path

import pydantic
import pytest

from tianping.bootstrap import merged_secrets
from tianping.config import ConfigFileError, Settings, load_secrets_file, load_settings

# No TIANPING_* settings from outside, and an empty working directory (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("clean_env")


def test_defaults(clean_env: Path) -> None:
    settings = load_settings()
    assert settings.data_dir == Path("var")
    assert settings.database_url == f"sqlite:///{clean_env}/var/tianping.db"
    assert settings.sqlite_synchronous == "FULL"
    assert settings.sqlite_writer_lock is True
    assert settings.log_level == "INFO"


def test_database_url_follows_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "data")
    assert settings.database_url == f"sqlite:///{tmp_path}/data/tianping.db"


def test_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TIANPING_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("TIANPING_SQLITE_SYNCHRONOUS", "normal")
    monkeypatch.setenv("TIANPING_LOG_LEVEL", "debug")
    monkeypatch.setenv("TIANPING_SQLITE_WRITER_LOCK", "false")
    settings = load_settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.database_url == f"sqlite:///{tmp_path}/d/tianping.db"
    assert settings.sqlite_synchronous == "NORMAL"
    assert settings.sqlite_writer_lock is False
    assert settings.log_level == "DEBUG"


def test_explicit_database_url_wins_over_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIANPING_DATABASE_URL", "postgresql://u@localhost/ledger")
    settings = load_settings(data_dir="elsewhere")
    assert settings.database_url == "postgresql://u@localhost/ledger"


def test_overrides_beat_environment_and_none_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TIANPING_LOG_LEVEL", "ERROR")
    assert load_settings(log_level="WARNING").log_level == "WARNING"
    assert load_settings(log_level=None).log_level == "ERROR"


def test_toml_file_in_working_directory(clean_env: Path) -> None:
    (clean_env / "tianping.toml").write_text(
        'data_dir = "from-toml"\nsqlite_synchronous = "EXTRA"\n'
    )
    settings = load_settings()
    assert settings.data_dir == Path("from-toml")
    assert settings.database_url == f"sqlite:///{clean_env}/from-toml/tianping.db"
    assert settings.sqlite_synchronous == "EXTRA"


def test_toml_file_from_env_var_and_precedence(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, clean_env: Path
) -> None:
    config = tmp_path / "custom.toml"
    config.write_text('log_level = "WARNING"\ndatabase_url = "sqlite:///from-file.db"\n')
    (clean_env / "tianping.toml").write_text('log_level = "CRITICAL"\n')  # ignored
    monkeypatch.setenv("TIANPING_CONFIG", str(config))
    assert load_settings().log_level == "WARNING"
    assert load_settings().database_url == "sqlite:///from-file.db"
    monkeypatch.setenv("TIANPING_LOG_LEVEL", "ERROR")  # env beats file
    assert load_settings().log_level == "ERROR"


def test_missing_explicit_config_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("TIANPING_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigFileError, match="no such file"):
        load_settings()


def test_unknown_toml_key_is_an_error(clean_env: Path) -> None:
    (clean_env / "tianping.toml").write_text('databse_url = "sqlite:///typo.db"\n')
    with pytest.raises(pydantic.ValidationError, match="databse_url"):
        load_settings()


@pytest.mark.parametrize(
    ("field", "value"),
    [("sqlite_synchronous", "FAST"), ("log_level", "LOUD"), ("database_url", "mysql://x/y")],
)
def test_invalid_values(field: str, value: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=field):
        load_settings(**{field: value})


def test_in_memory_sqlite_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="in-memory"):
        load_settings(database_url="sqlite:///:memory:")


def test_password_never_shown() -> None:
    secret = "hunter2-very-secret"
    settings = load_settings(database_url=f"postgresql://u:{secret}@db/ledger")
    assert secret in settings.database_url
    assert secret not in repr(settings)
    assert secret not in str(settings)
    with pytest.raises(pydantic.ValidationError) as info:
        load_settings(database_url=f"postgresql+asyncpg://u:{secret}@db/ledger")
    assert secret not in str(info.value)


def test_settings_are_immutable() -> None:
    settings = load_settings()
    with pytest.raises(pydantic.ValidationError):
        settings.log_level = "DEBUG"  # type: ignore[misc]
    assert isinstance(settings, Settings)


def test_rulebook_and_overlays_from_environment_and_file(
    monkeypatch: pytest.MonkeyPatch, clean_env: Path
) -> None:
    assert (load_settings().rulebook, load_settings().rulebook_overlays) == ("cn", ())
    (clean_env / "tianping.toml").write_text(
        'rulebook = "eu"\nrulebook_overlays = ["a", "b"]\n', encoding="utf-8"
    )
    assert (load_settings().rulebook, load_settings().rulebook_overlays) == ("eu", ("a", "b"))
    monkeypatch.setenv("TIANPING_RULEBOOK_OVERLAYS", "interest-cap-15-4, class-ii-cap")
    assert load_settings().rulebook_overlays == ("interest-cap-15-4", "class-ii-cap")
    monkeypatch.setenv("TIANPING_RULEBOOK_OVERLAYS", "a,,b")
    with pytest.raises(pydantic.ValidationError, match="stray comma"):
        load_settings()


def test_secrets_file_holds_only_identity_keys_and_only_for_its_owner(tmp_path: Path) -> None:
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text(
        "# identity keys\nTIANPING_SECRETS_KEY=abc\nTIANPING_MASTER_KEY = def\n", encoding="utf-8"
    )
    secrets_file.chmod(0o600)
    assert load_secrets_file(secrets_file) == {
        "TIANPING_SECRETS_KEY": "abc",
        "TIANPING_MASTER_KEY": "def",
    }
    secrets_file.chmod(0o640)
    with pytest.raises(ConfigFileError, match="readable by others"):
        load_secrets_file(secrets_file)
    secrets_file.chmod(0o600)
    secrets_file.write_text("TIANPING_DATABASE_URL=postgresql://u:pw@h/db\n", encoding="utf-8")
    with pytest.raises(ConfigFileError, match="line 1") as refused:
        load_secrets_file(secrets_file)
    assert "pw" not in str(refused.value)
    with pytest.raises(ConfigFileError, match="No such file"):
        load_secrets_file(tmp_path / "missing.env")


def test_the_environment_wins_over_the_secrets_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets_file = tmp_path / "secrets.env"
    secrets_file.write_text("TIANPING_MASTER_KEY=from-file\n", encoding="utf-8")
    secrets_file.chmod(0o600)
    monkeypatch.setenv("TIANPING_SECRETS_FILE", str(secrets_file))
    assert load_settings().secrets_file == secrets_file
    monkeypatch.setenv("TIANPING_MASTER_KEY", "from-env")
    assert merged_secrets(load_settings())["TIANPING_MASTER_KEY"] == "from-env"
