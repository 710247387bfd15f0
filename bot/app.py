"""Flask application factory."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from flask import Flask, Response, jsonify
from sqlalchemy import text

from bot.config import Config
from bot.runtime import Runtime, build_runtime

log = logging.getLogger(__name__)

# Every app's background executor, so a test (or an embedding program) can wait for them to finish.
EXECUTORS: list[ThreadPoolExecutor] = []


def drain_background_work() -> None:
    """Wait for work submitted after responses (slow handlers, event processing, buffered tracked-link
    clicks: flushed first, their drain kick runs in the executors) and stop the executors."""
    from bot.links import close_all

    close_all()
    while EXECUTORS:
        EXECUTORS.pop().shutdown(wait=True)


def load_handlers() -> None:
    """Import every handler module so their commands, dialogs and card actions register."""
    from handlers import (  # noqa: F401
        admin,
        archive,
        bank,
        coach,
        copilot,
        credit,
        customers,
        funnel,
        governance,
        help,
        incentives,
        invoices,
        links,
        payments,
        stages,
        stress,
        visits,
    )


def create_app(config: Config | None = None, *, runtime: Runtime | None = None) -> Flask:
    if runtime is None:
        assert config is not None
        runtime = build_runtime(config)
    config = runtime.config
    load_handlers()
    app = Flask("salesbot")
    app.config["MAX_CONTENT_LENGTH"] = max(int(config.get("wecom.max_body_bytes")), 25 * 1024 * 1024)
    app.extensions["salesbot"] = runtime
    executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="handler")
    EXECUTORS.append(executor)
    app.extensions["salesbot.executor"] = executor

    from bot.callback import bp as callback_bp

    app.register_blueprint(callback_bp)
    from bot.upload import register as register_upload

    register_upload(app, runtime)
    from bot.links import register as register_links

    register_links(app, runtime)

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        checks = {"database": "ok", "redis": "ok"}
        try:
            with runtime.db.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            checks["database"] = f"error: {type(exc).__name__}"
        try:
            runtime.redis.ping()
        except Exception as exc:
            checks["redis"] = f"error: {type(exc).__name__}"
        ok = all(v == "ok" for v in checks.values())
        return jsonify(status="ok" if ok else "degraded", **checks), 200 if ok else 503

    if config.get("dev.emulator"):
        try:
            from bot.emulator import register as register_emulator
        except ImportError:
            log.warning("emulator enabled but not available")
        else:
            register_emulator(app, runtime)
    return app
