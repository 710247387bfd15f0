"""Configuration: TOML plus env overrides, validated at start, one clear line on a bad value."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import main
from bot.config import ConfigError, example_toml, load_config

ROOT = Path(__file__).resolve().parent.parent


def test_defaults_without_a_file():
    cfg = load_config(None, env={})
    assert cfg.get("wecom.max_clock_skew_s") == 600
    assert cfg.get("database.url") == "sqlite:///salesbot.db"
    assert cfg.get("redis.url") == ""
    assert str(cfg.tz) == "Asia/Shanghai"


def test_env_overrides_the_file(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[wecom]\nsecret = "from-file"\nagent_id = 7\n[scheduler.jobs.cleanup]\nenabled = true\n')
    cfg = load_config(f, env={"SALESBOT_WECOM_SECRET": "from-env", "SALESBOT_SCHEDULER_JOBS_CLEANUP_ENABLED": "false",
                              "SALESBOT_ROLES_ADMINS": "a, b"})
    assert cfg.get("wecom.secret") == "from-env"
    assert cfg.get("wecom.agent_id") == 7
    assert cfg.get("scheduler.jobs.cleanup.enabled") is False
    assert cfg.get("roles.admins") == ["a", "b"]


@pytest.mark.parametrize("toml, key, words", [
    ('[wecom]\nencoding_aes_key = "short"\n', "wecom.encoding_aes_key", "43 characters"),
    ('[wecom]\nmax_clock_skew_s = -1\n', "wecom.max_clock_skew_s", ">= 0"),
    ('[wecom]\nagent_id = "abc"\n', "wecom.agent_id", "integer"),
    ('[scheduler]\ntimezone = "Mars/Olympus"\n', "scheduler.timezone", "unknown time zone"),
    ('[scheduler.jobs.cleanup]\ncron = "every day"\n', "scheduler.jobs.cleanup.cron", "cron"),
    ('[database]\nurl = "mysql://x"\n', "database.url", "sqlite:// or postgresql://"),
    ('[wecom]\nsecrte = "typo"\n', "wecom.secrte", "unknown key"),
])
def test_a_bad_value_names_the_key_and_the_problem(tmp_path: Path, toml: str, key: str, words: str):
    f = tmp_path / "c.toml"
    f.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(f, env={})
    assert err.value.key == key
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_cli_stops_with_one_line_on_a_bad_value(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[server]\nport = 99999\n')
    result = CliRunner().invoke(main, ["--config", str(f), "jobs", "list"])
    assert result.exit_code == 2
    assert result.output.strip() == "config error: server.port: must be between 1 and 65535"


def test_secrets_are_masked_when_the_config_is_printed(tmp_path: Path):
    f = tmp_path / "c.toml"
    f.write_text('[wecom]\nsecret = "s3cr3t-value"\ntoken = "tok-value"\n')
    result = CliRunner().invoke(main, ["--config", str(f), "config", "check"])
    assert result.exit_code == 0
    assert "s3cr3t-value" not in result.output and "tok-value" not in result.output
    assert "wecom.secret = '***'" in result.output


def test_example_file_documents_every_key_with_its_default():
    assert (ROOT / "config.example.toml").read_text(encoding="utf-8") == example_toml()
    # and it loads as a valid configuration
    assert load_config(ROOT / "config.example.toml", env={}).get("server.port") == 8000


def test_serve_refuses_to_start_without_wecom_credentials(tmp_path: Path):
    result = CliRunner().invoke(main, ["serve"], env={"SALESBOT_CONFIG": ""})
    assert result.exit_code == 2
    assert result.output.startswith("config error: wecom.corp_id: required")
