"""ERP source: a generic JSON HTTP API returning contract instalment rows.

Contract: ``GET <base_url>`` with ``Authorization: Bearer <key>`` answers ``{"rows": [{"number": "HT…",
"customer": "<name or credit code>", "amount": "150000.00", "seq": 1, "instalment": "100000.00",
"due_on": "2026-12-10", "owner": "<userid>"}, …]}``. Failures raise ``ErpError``.
"""

from __future__ import annotations

from typing import Any

import requests


class ErpError(Exception):
    pass


def fetch_rows(settings: dict[str, Any], timeout: float = 30.0) -> list[tuple[int, dict[str, Any]]]:
    try:
        res = requests.get(str(settings["base_url"]), timeout=timeout,
                           headers={"Authorization": f"Bearer {settings.get('key', '')}"})
        res.raise_for_status()
        rows = res.json().get("rows")
    except (requests.RequestException, ValueError, AttributeError) as exc:
        raise ErpError(f"ERP API: {type(exc).__name__}") from None
    if not isinstance(rows, list):
        raise ErpError("ERP API: no list in 'rows'")
    return [(i, row if isinstance(row, dict) else {}) for i, row in enumerate(rows, start=1)]
