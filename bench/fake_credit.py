"""A fake credit provider on loopback for the jobs benchmark (integrations/credit.py's contract).

``GET /?credit_code=…`` → ``{"rating": …, "agency": "bench", "scale": "S&P", "rated_on": today}``: BBB,
except codes ending in 13 (1 %): BB+, below the default threshold BBB- (those customers get frozen).
"""

from __future__ import annotations

from datetime import date

from flask import Flask, jsonify, request

app = Flask("fake_credit")


@app.get("/")
def rating():  # type: ignore[no-untyped-def]
    code = request.args.get("credit_code") or request.args.get("name") or ""
    return jsonify(rating="BB+" if code.endswith("13") else "BBB", agency="bench", scale="S&P",
                   rated_on=date.today().isoformat())
