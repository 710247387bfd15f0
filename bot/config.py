"""Configuration: one TOML file plus SALESBOT_<SECTION>_<KEY> environment overrides.

Every key is declared once in ``SCHEMA`` with its type, default and documentation; the loader
validates the whole file at start and raises ``ConfigError`` naming the first bad key.
``config.example.toml`` is generated from the same schema (``salesbot config example``).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class ConfigError(Exception):
    """A bad configuration value; ``str()`` is one line naming the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"config error: {key}: {problem}")
        self.key = key
        self.problem = problem


Validator = Callable[[Any], str | None]


@dataclass(frozen=True)
class Key:
    section: str  # dotted, e.g. "wecom" or "integrations.bank" or "scheduler.jobs.cleanup"
    name: str
    type: type
    default: Any
    doc: str
    secret: bool = False
    check: Validator | None = None

    @property
    def path(self) -> str:
        return f"{self.section}.{self.name}"

    @property
    def env_name(self) -> str:
        return "SALESBOT_" + self.path.replace(".", "_").upper()


def _url(value: str) -> str | None:
    if value and not value.startswith(("http://", "https://")):
        return "must start with http:// or https://"
    return None


def _base_url(value: str) -> str | None:
    problem = _url(value)
    if problem:
        return problem
    if value and not value.endswith("/"):
        return "must end with /"
    return None


def _aes_key(value: str) -> str | None:
    if value and len(value) != 43:
        return f"must be 43 characters (got {len(value)})"
    return None


def _timezone(value: str) -> str | None:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {value!r}"
    return None


def _non_negative(value: int | float) -> str | None:
    return "must be >= 0" if value < 0 else None


def _positive(value: int | float) -> str | None:
    return "must be > 0" if value <= 0 else None


def _port(value: int) -> str | None:
    return None if 0 < value < 65536 else "must be between 1 and 65535"


def _db_url(value: str) -> str | None:
    if not value.startswith(("sqlite:", "postgresql:", "postgresql+psycopg:", "postgresql+psycopg2:")):
        return "must be a sqlite:// or postgresql:// URL"
    return None


def _redis_url(value: str) -> str | None:
    if value and not value.startswith(("redis://", "rediss://", "unix://")):
        return "must be empty (embedded) or a redis:// URL"
    return None


def _cron(value: str) -> str | None:
    if not value:
        return None
    if len(value.split()) != 5:
        return "must be a 5-field cron expression (minute hour day month weekday)"
    from apscheduler.triggers.cron import CronTrigger

    try:
        CronTrigger.from_crontab(value)
    except ValueError as exc:
        return f"invalid cron expression: {exc}"
    return None


# The default job table. Later features add their jobs here; each becomes
# [scheduler.jobs.<name>] with cron / interval_s / enabled keys.
DEFAULT_JOBS: dict[str, dict[str, Any]] = {
    "cleanup": {"cron": "30 3 * * *", "interval_s": 0, "enabled": True,
                "doc": "purge processed-callback keys, delivered outbox rows, undeliverable images' bytes and finished "
                       "job runs past retention"},
    "rejection_alert": {"cron": "0 12,18 * * *", "interval_s": 0, "enabled": True,
                        "doc": "alert admins when too many of a team's submissions were rejected today"},
    "customer_events": {"cron": "", "interval_s": 300, "enabled": True,
                        "doc": "process customer events left unprocessed and re-evaluate upgrade rules"},
    "link_clicks": {"cron": "", "interval_s": 5, "enabled": True,
                    "doc": "move queued tracked-link clicks into customer events and remind"},
    "funnel_heatmap": {"cron": "0 9 * * 1", "interval_s": 0, "enabled": True,
                       "doc": "send each manager the weekly funnel heatmap of their team"},
    "collection_reminders": {"cron": "0 9 * * *", "interval_s": 0, "enabled": True,
                             "doc": "countdown and overdue pushes for invoiced receivables"},
    "bank_poll": {"cron": "", "interval_s": 600, "enabled": True,
                  "doc": "fetch new bank lines from the connector and match them"},
    "credit_check": {"cron": "30 1 * * *", "interval_s": 0, "enabled": True,
                     "doc": "ask the credit provider for each active customer's rating; freeze on a fall"},
    "forecast_snapshot": {"cron": "5 0 1 * *", "interval_s": 0, "enabled": True,
                          "doc": "snapshot the month's finance forecast and report last month's accuracy"},
    "health_scores": {"cron": "0 2 * * *", "interval_s": 0, "enabled": True,
                      "doc": "recompute every customer's health score"},
    "bonus": {"cron": "", "interval_s": 600, "enabled": True,
              "doc": "credit bonuses for payment events not yet consumed"},
    "incentive_close": {"cron": "30 0 1 * *", "interval_s": 0, "enabled": True,
                        "doc": "close last month: store every rep's dual-track score"},
    "newhire_check": {"cron": "0 10 2 * *", "interval_s": 0, "enabled": True,
                      "doc": "alert managers about new hires three months below their protected target"},
    "erp_sync": {"cron": "0 1 * * *", "interval_s": 0, "enabled": True,
                 "doc": "pull contracts and instalments from the ERP API (when integrations.erp is enabled)"},
    "note_reminders": {"cron": "0 9 * * *", "interval_s": 0, "enabled": True,
                       "doc": "remind members of meeting-note action items due today"},
    "media_fetch": {"cron": "", "interval_s": 600, "enabled": True,
                    "doc": "retry downloading media whose download failed (WeCom keeps media 3 days)"},
}

INTEGRATIONS = ("bank", "credit", "erp", "asr", "llm")


def _build_schema() -> list[Key]:
    k = Key
    keys = [
        k("wecom", "corp_id", str, "", "企业ID (CorpID) of the company"),
        k("wecom", "agent_id", int, 0, "AgentId of the self-built app"),
        k("wecom", "secret", str, "", "the app's Secret (never logged)", secret=True),
        k("wecom", "token", str, "", "callback Token from the app's 接收消息 settings", secret=True),
        k("wecom", "encoding_aes_key", str, "", "callback EncodingAESKey (43 characters)", secret=True,
          check=_aes_key),
        k("wecom", "api_base_url", str, "https://qyapi.weixin.qq.com/cgi-bin/",
          "base URL of the WeCom API; the emulator serves one under /dev/wecom/cgi-bin/", check=_base_url),
        k("wecom", "oauth_authorize_url", str, "https://open.weixin.qq.com/connect/oauth2/authorize",
          "WeCom OAuth authorize page used by the upload page (snsapi_base); the emulator serves one", check=_url),
        k("wecom", "max_clock_skew_s", int, 600,
          "reject callbacks whose timestamp is further than this from now; 0 disables", check=_non_negative),
        k("wecom", "max_body_bytes", int, 65536, "largest callback body accepted", check=_positive),
        k("wecom", "dedup_ttl_s", int, 86400, "how long a processed MsgId/event key is remembered in Redis",
          check=_positive),
        k("wecom", "passive_reply_budget_s", float, 3.0,
          "how long a callback waits for a handler before answering empty and sending the reply later "
          "(WeCom gives up at 5 s)", check=_positive),
        k("wecom", "request_timeout_s", float, 10.0, "timeout of one WeCom API call", check=_positive),
        k("wecom", "duplicate_check_interval_s", int, 1800,
          "largest enable_duplicate_check window WeCom is asked for when a delivery is retried, so a message "
          "it already accepted is not shown twice (at most 14400)", check=lambda v: None if 0 < v <= 14400 else "must be in 1..14400"),
        k("server", "public_base_url", str, "http://127.0.0.1:8000",
          "public URL of this server, used in tracked links and upload pages", check=_url),
        k("server", "host", str, "127.0.0.1", "address salesbot serve / demo listens on"),
        k("server", "secret_key", str, "", "signs the upload page's session cookie; empty = derived from "
          "wecom.secret", secret=True),
        k("server", "max_upload_bytes", int, 20 * 1024 * 1024, "largest file accepted by the upload page",
          check=_positive),
        k("server", "upload_link_ttl_s", int, 86400, "how long an upload link stays valid", check=_positive),
        k("server", "port", int, 8000, "port salesbot serve / demo listens on", check=_port),
        k("database", "url", str, "sqlite:///salesbot.db", "SQLAlchemy URL; PostgreSQL in production",
          check=_db_url),
        k("redis", "url", str, "", "Redis URL; empty = embedded in-process Redis (one process only)",
          check=_redis_url),
        k("roles", "admins", list, [], "WeCom userids that are admins from the start (bootstrap)"),
        k("scheduler", "timezone", str, "Asia/Shanghai", "time zone of schedules and of dates shown to users",
          check=_timezone),
        k("scheduler", "lease_s", int, 60, "a running job refreshes its lease this often ×⅓; a run whose lease "
          "lapsed (its worker died) is taken over by another worker", check=_positive),
        k("outbox", "batch_size", int, 50, "rows one delivery pass claims", check=_positive),
        k("outbox", "poll_interval_s", float, 1.0, "pause between delivery passes when idle", check=_positive),
        k("outbox", "per_member_per_minute", int, 30, "WeCom's per-member message limit; sends are paced to it",
          check=_positive),
        k("outbox", "max_attempts", int, 12, "attempts before a message is given up (dead)", check=_positive),
        k("outbox", "backoff_base_s", float, 5.0, "first retry delay; doubles each attempt", check=_positive),
        k("outbox", "backoff_max_s", float, 1800.0, "largest retry delay", check=_positive),
        k("outbox", "lease_s", int, 120, "how long a worker owns a claimed row before another may take it",
          check=_positive),
        k("alerts", "rejection_share", float, 0.3,
          "alert admins when more than this share of a team's submissions in a day were rejected",
          check=lambda v: None if 0 < v < 1 else "must be between 0 and 1"),
        k("alerts", "rejection_min_submissions", int, 5, "only judge a team's day after this many submissions",
          check=_positive),
        k("retention", "processed_keys_days", int, 7, "days processed-callback keys are kept", check=_positive),
        k("retention", "outbox_days", int, 30,
          "days delivered outbox rows are kept (and the image bytes of rows that failed for good)", check=_positive),
        k("retention", "job_runs_days", int, 7, "days the record of a successful job run is kept (failed runs stay)",
          check=_positive),
        k("hooks", "product_events_secret", str, "", "HMAC-SHA256 secret of POST /hooks/product-events",
          secret=True),
        k("links", "click_flush_ms", int, 50,
          "tracked-link clicks are buffered in each web process and pushed to Redis this often (one round trip "
          "for all of them); a revocation reaches the redirects within about this long; 0 = one round trip per "
          "click, a revocation seen by the next click", check=_non_negative),
        k("dev", "emulator", bool, False, "serve the local WeCom emulator under /dev/ (never in production)"),
        k("log", "level", str, "INFO", "log level", check=lambda v: None if v.upper() in
          {"DEBUG", "INFO", "WARNING", "ERROR"} else "must be DEBUG, INFO, WARNING or ERROR"),
        k("log", "json", bool, True, "one JSON object per log line (structured logs)"),
    ]
    for name in INTEGRATIONS:
        sec = f"integrations.{name}"
        keys += [
            k(sec, "enabled", bool, False, f"use the {name} provider"),
            k(sec, "base_url", str, "", f"base URL of the {name} provider's HTTP API", check=_url),
            k(sec, "key", str, "", f"API key of the {name} provider", secret=True),
        ]
    keys += [
        k("integrations.bank", "field_map", str, "",
          "map of our fields to the API's: account=…,transaction_id=…,booked_on=…,amount=…,payer_name=…,memo=…"),
        k("integrations.bank", "items_field", str, "items", "the list of lines in each API page"),
        k("integrations.bank", "cursor_field", str, "next_cursor", "the next page's cursor in each API page"),
        k("integrations.credit", "batch_url", str, "",
          "URL of the provider's batch endpoint (POST, many customers a request, see integrations/credit.py); "
          "empty = one GET per customer", check=_url),
        k("integrations.credit", "batch_size", int, 500, "customers in one batch request", check=_positive),
        k("integrations.credit", "concurrency", int, 8, "requests to the credit provider in flight at once",
          check=_positive),
        k("integrations.credit", "timeout_s", float, 15.0, "timeout of one request to the credit provider",
          check=_positive),
        k("integrations.llm", "model", str, "", "model name sent to the OpenAI-compatible API"),
        k("payments", "contract_pattern", str, r"[A-Z]{1,6}-?[0-9]{4,}(?:-[0-9]+)*",
          "regex that finds a contract number in a bank memo"),
        k("payments", "credit_threshold", str, "BBB-", "ratings below this freeze unsigned opportunities"),
        k("payments", "commission_rate", str, "0.03", "default commission on received payments"),
    ]
    for job, spec in DEFAULT_JOBS.items():
        sec = f"scheduler.jobs.{job}"
        keys += [
            k(sec, "cron", str, spec["cron"], f"{spec['doc']}: cron schedule (empty to use interval_s)",
              check=_cron),
            k(sec, "interval_s", int, spec["interval_s"], "interval in seconds when cron is empty",
              check=_non_negative),
            k(sec, "enabled", bool, spec["enabled"], "run this job"),
        ]
    return keys


SCHEMA: list[Key] = _build_schema()


@dataclass
class Config:
    """Validated configuration; ``cfg.get("wecom.token")`` or ``cfg.section("wecom")``."""

    values: dict[str, Any] = field(default_factory=dict)
    source: str = "<defaults>"

    def get(self, path: str) -> Any:
        return self.values[path]

    def section(self, section: str) -> dict[str, Any]:
        prefix = section + "."
        return {p[len(prefix):]: v for p, v in self.values.items()
                if p.startswith(prefix) and "." not in p[len(prefix):]}

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.values["scheduler.timezone"])

    def with_overrides(self, **overrides: Any) -> Config:
        """A copy with dotted keys (given with __ for dots) replaced, validated."""
        raw = {path.replace("__", "."): value for path, value in overrides.items()}
        values = dict(self.values)
        for key in SCHEMA:
            if key.path in raw:
                values[key.path] = _coerce(key, raw.pop(key.path))
        if raw:
            unknown = sorted(raw)[0]
            raise ConfigError(unknown, "unknown key")
        return Config(values, self.source)

    def redacted(self) -> dict[str, Any]:
        """Values safe to log: secrets masked."""
        secret = {k.path for k in SCHEMA if k.secret}
        return {p: ("***" if p in secret and v else v) for p, v in self.values.items()}


_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", list: "a list"}


def _coerce(key: Key, value: Any) -> Any:
    if key.type is bool:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                value = True
            elif low in {"0", "false", "no", "off", ""}:
                value = False
        if not isinstance(value, bool):
            raise ConfigError(key.path, f"must be {_TYPE_NAMES[bool]}")
    elif key.type is int:
        if isinstance(value, str):
            try:
                value = int(value.strip())
            except ValueError:
                raise ConfigError(key.path, f"must be {_TYPE_NAMES[int]} (got {value!r})") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(key.path, f"must be {_TYPE_NAMES[int]}")
    elif key.type is float:
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise ConfigError(key.path, f"must be {_TYPE_NAMES[float]} (got {value!r})") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(key.path, f"must be {_TYPE_NAMES[float]}")
        value = float(value)
    elif key.type is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(key.path, "must be a list of strings")
    elif key.type is str:
        if not isinstance(value, str):
            raise ConfigError(key.path, f"must be {_TYPE_NAMES[str]}")
    if key.check is not None:
        problem = key.check(value)
        if problem:
            raise ConfigError(key.path, problem)
    return value


def _flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in data.items():
        path = f"{prefix}{name}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, path + "."))
        else:
            out[path] = value
    return out


def load_config(path: str | os.PathLike[str] | None = None,
                env: Mapping[str, str] | None = None) -> Config:
    """Load the TOML file (``path``, else $SALESBOT_CONFIG, else defaults) and apply env overrides."""
    env = os.environ if env is None else env
    path = path or env.get("SALESBOT_CONFIG") or None
    raw: dict[str, Any] = {}
    source = "<defaults>"
    if path:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("--config", f"file not found: {p}")
        try:
            raw = _flatten(tomllib.loads(p.read_text(encoding="utf-8")))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(str(p), f"not valid TOML: {exc}") from None
        source = str(p)
    known = {key.path: key for key in SCHEMA}
    for path_ in raw:
        if path_ not in known:
            raise ConfigError(path_, "unknown key (see config.example.toml)")
    values: dict[str, Any] = {}
    for key in SCHEMA:
        value = raw.get(key.path, key.default)
        if key.env_name in env:
            value = env[key.env_name]
        values[key.path] = _coerce(key, value)
    return Config(values, source)


def toml_value(value: Any) -> str:
    """A value written as TOML (strings quoted and escaped)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    escaped = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def example_toml() -> str:
    """The documented example configuration: every key, its default and what it means."""
    lines = [
        "# salesbot configuration. Every key is shown with its default.",
        "# Any key can be overridden by an environment variable SALESBOT_<SECTION>_<KEY>,",
        "# e.g. SALESBOT_WECOM_SECRET or SALESBOT_SCHEDULER_JOBS_CLEANUP_ENABLED.",
        "# Generated by `salesbot config example`; a test keeps this file in step with the code.",
    ]
    order = list(dict.fromkeys(k.section for k in SCHEMA))  # each section once, where it first appears
    current = None
    for key in sorted(SCHEMA, key=lambda k: order.index(k.section)):
        if key.section != current:
            lines += ["", f"[{key.section}]"]
            current = key.section
        lines.append(f"# {key.doc}{' (secret)' if key.secret else ''}")
        lines.append(f"{key.name} = {toml_value(key.default)}")
    return "\n".join(lines) + "\n"
