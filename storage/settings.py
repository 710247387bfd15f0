"""Run-time settings admins change by chat (stage gates, SLAs, thresholds), stored as JSON."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from storage.models import Setting


def get_setting(session: Session, key: str, default: Any = None) -> Any:
    row = session.get(Setting, key)
    return default if row is None else row.value


def tunable(session: Session, config: Any, key: str) -> Any:
    """A threshold admins may change by chat (stored under the config key), else the config value."""
    row = session.get(Setting, key)
    return config.get(key) if row is None else row.value


def set_setting(session: Session, key: str, value: Any, by: str) -> None:
    row = session.get(Setting, key)
    if row is None:
        session.add(Setting(key=key, value=value, updated_by=by))
    else:
        row.value = value
        row.updated_by = by
