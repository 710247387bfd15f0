"""Structured logs: one JSON object per line with the message, level, logger and any ``extra`` fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Never print these, whatever a caller passes in ``extra``.
_SECRET_FIELDS = {"secret", "token", "encoding_aes_key", "access_token", "corpsecret", "password", "key"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD and not k.startswith("_"):
                data[k] = "***" if k.lower() in _SECRET_FIELDS else v
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def setup_logging(level: str = "INFO", json_lines: bool = True) -> None:
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_salesbot", False):
            root.removeHandler(h)
    handler = logging.StreamHandler(sys.stderr)
    handler._salesbot = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json_lines else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level.upper())
    # requests' URLs carry the access_token in the query string: keep urllib3 quiet
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("wechatpy").setLevel(logging.WARNING)
    logging.getLogger("alembic").setLevel(logging.WARNING)
