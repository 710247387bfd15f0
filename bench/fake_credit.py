"""A fake credit provider on loopback for the jobs benchmark (integrations/credit.py's contract).

``GET /?credit_code=…`` → ``{"rating": …, "agency": "bench", "scale": "S&P", "rated_on": today}``: BBB,
except codes ending in 13 (1 %): BB+, below the default threshold BBB- (those customers get frozen).
``POST /batch`` with ``{"items": [{"ref": …, "credit_code": …} or {"ref": …, "name": …}, …]}`` → the same
rating for each item as ``{"results": [{"ref": …, "rating": …, …}, …]}``.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Flask, jsonify, request

app = Flask("fake_credit")


def _answer(code: str) -> dict[str, Any]:
    return {"rating": "BB+" if code.endswith("13") else "BBB", "agency": "bench", "scale": "S&P",
            "rated_on": date.today().isoformat()}


@app.get("/")
def rating():  # type: ignore[no-untyped-def]
    return jsonify(_answer(request.args.get("credit_code") or request.args.get("name") or ""))


@app.post("/batch")
def batch():  # type: ignore[no-untyped-def]
    items = (request.get_json(silent=True) or {}).get("items") or []
    return jsonify(results=[{"ref": item.get("ref"), **_answer(item.get("credit_code") or item.get("name") or "")}
                            for item in items])
