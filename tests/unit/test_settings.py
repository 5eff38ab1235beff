"""core.settings: defaults, validation, and the one-line start-up error."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings, describe_error, get_settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
CLEARED = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "DATABASE_URL", "AUTH_MODE", "PORT")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No developer environment and no `.env` (it is read relative to the working directory)."""
    for name in {*CLEARED, *(f.upper() for f in Settings.model_fields)}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_defaults_are_valid() -> None:
    s = Settings()
    assert s.port == 8000
    assert s.host == "127.0.0.1"
    assert s.auth_mode == "dev"
    assert s.database_url is None
    assert s.db_pool_min <= s.db_pool_max
    assert s.uses_openai is False
    assert s.memory_quotas == {"personal": 5, "project": 3, "task": 3}


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.port = 9000  # type: ignore[misc]  # on purpose: assigning to frozen settings must raise


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, False),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:11434/v1"}, True),
        ({"OPENAI_API_KEY": "sk-test"}, True),
        ({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://x/v1"}, True),
        ({"OPENAI_API_KEY": ""}, False),  # an empty variable is unset
    ],
)
def test_uses_openai(monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: bool) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert Settings().uses_openai is expected


def test_env_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "9001")
    monkeypatch.setenv("DATABASE_URL", "postgres://u@h/db")
    monkeypatch.setenv("ADMIN_USER_IDS", '["alice", "bob"]')
    s = Settings()
    assert s.port == 9001
    assert s.database_url == "postgres://u@h/db"
    assert s.admin_user_ids == ["alice", "bob"]


def test_jwt_mode_valid_when_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUTH_MODE", "jwt")
    monkeypatch.setenv("JWT_JWKS_URL", "https://issuer.test/jwks.json")
    monkeypatch.setenv("JWT_AUDIENCE", "delight")
    monkeypatch.setenv("JWT_ISSUER", "https://issuer.test")
    assert Settings().auth_mode == "jwt"


BAD_ENVS = [
    pytest.param({"PORT": "notaport"}, "PORT", id="port-not-int"),
    pytest.param({"PORT": "0"}, "PORT", id="port-zero"),
    pytest.param({"PORT": "65536"}, "PORT", id="port-too-big"),
    pytest.param({"DATABASE_URL": "sqlite:///x.db"}, "DATABASE_URL", id="sqlite-url"),
    pytest.param({"DATABASE_URL": "mysql://u@h/db"}, "DATABASE_URL", id="mysql-url"),
    pytest.param({"DB_POOL_MIN": "5", "DB_POOL_MAX": "2"}, "DB_POOL_MIN", id="pool-min-gt-max"),
    pytest.param({"AUTH_MODE": "jwt"}, "AUTH_MODE", id="jwt-bare"),
    pytest.param({"AUTH_MODE": "jwt", "JWT_JWKS_URL": "https://i/jwks.json"}, "AUTH_MODE", id="jwt-no-aud"),
    pytest.param({"AUTH_MODE": "jwt", "JWT_AUDIENCE": "a", "JWT_ISSUER": "i"}, "AUTH_MODE", id="jwt-no-jwks"),
    pytest.param({"AUTH_MODE": "oauth"}, "AUTH_MODE", id="auth-mode-unknown"),
    pytest.param({"LOG_LEVEL": "chatty"}, "LOG_LEVEL", id="log-level"),
    pytest.param({"EMBEDDING_DIM": "4"}, "EMBEDDING_DIM", id="embedding-dim-small"),
]


@pytest.mark.parametrize(("env", "var"), BAD_ENVS)
def test_invalid_env_raises_and_describes_in_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], var: str
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(ValidationError) as info:
        Settings()
    line = describe_error(info.value)
    assert "\n" not in line
    assert line.startswith("invalid configuration: ")
    assert var in line


def test_describe_error_lists_every_bad_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", "notaport")
    monkeypatch.setenv("DATABASE_URL", "sqlite:///x.db")
    with pytest.raises(ValidationError) as info:
        Settings()
    line = describe_error(info.value)
    assert "\n" not in line
    assert "PORT" in line and "DATABASE_URL" in line


def test_describe_error_does_not_echo_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "mysql://user:s3cret@host/db")
    with pytest.raises(ValidationError) as info:
        Settings()
    assert "s3cret" not in describe_error(info.value)


@pytest.mark.parametrize(("env", "var"), BAD_ENVS)
def test_load_settings_exits_2_with_one_line(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    var: str,
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as info:
        load_settings()
    assert info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("invalid configuration: ") and var in lines[0]
    assert captured.out == ""


def test_admin_user_ids_are_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADMIN_USER_IDS", " alice, bob ,,")
    assert Settings().admin_user_ids == ["alice", "bob"]


@pytest.mark.parametrize(
    "env",
    [{"MODEL_PRICES": "notjson"}, {"MODEL_PRICES": '{"gpt-4o": "cheap"}'}],
    ids=["model-prices-not-json", "model-prices-bad-shape"],
)
def test_load_settings_exits_2_on_unparseable_complex_value(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], env: dict[str, str]
) -> None:
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SystemExit) as info:
        load_settings()
    assert info.value.code == 2
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("invalid configuration")
    assert "model_prices" in lines[0].lower()


def test_load_settings_returns_cached_instance() -> None:
    first = load_settings()
    assert load_settings() is first
    assert first.port == 8000


def test_python_m_api_with_bad_port_exits_2_with_one_line() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI")}
    env["PORT"] = "notaport"
    proc = subprocess.run(
        [sys.executable, "-m", "api"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("invalid configuration")
    assert "PORT" in lines[0]


def test_the_admission_limit_does_not_follow_the_pool() -> None:
    """RUN_MAX_RUNNING bounds the backlog a saturated process admits; a bigger pool must not
    raise it (a run holds a connection only per statement)."""
    assert Settings().run_max_running == 20
    assert Settings(db_pool_max=60).run_max_running == 20
    assert Settings(db_pool_max=60, run_max_running=40).run_max_running == 40
