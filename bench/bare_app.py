"""The baselines of the HTTP benchmarks: bare Flask endpoints under the same gunicorn and workers.

``POST /wecom/callback`` reads the body and answers an empty 200; ``GET /t/<token>`` answers a 302 to a
fixed URL with the same headers as salesbot's redirect. No salesbot code, no database, no Redis.
"""

from __future__ import annotations

from flask import Flask, Response, redirect, request

app = Flask("bare")


@app.post("/wecom/callback")
def callback() -> Response:
    request.get_data()
    return Response("", status=200)


@app.get("/t/<token>")
def follow(token: str) -> Response:
    resp = redirect("https://docs.example.com/manual.pdf", code=302)
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["Referrer-Policy"] = "no-referrer"
    return resp  # type: ignore[return-value]
