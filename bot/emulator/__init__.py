"""The local WeCom emulator: a fake WeCom API, a browser console to chat as any member, transcripts.

Only registered when ``[dev] emulator = true`` (``salesbot demo`` turns it on); never in production.
The bot itself has no emulator code path: its WeCom client reaches the fake API because
``wecom.api_base_url`` points at ``/dev/wecom/cgi-bin/``.
"""

from __future__ import annotations

import logging

from flask import Flask

from bot.runtime import Runtime

STATE_KEY = "wecom_state"
EXTENSION = "salesbot.emulator"

log = logging.getLogger(__name__)


def register(app: Flask, runtime: Runtime) -> None:
    """Serve the fake API under /dev/wecom/cgi-bin/ and the console under /dev/ on ``app``.

    The fake WeCom's state lives in ``runtime.extras["wecom_state"]`` (created on first use, so an
    in-process demo keeps one across apps); its directory starts with the database's members.
    """
    from bot.emulator.api import bp as api_bp
    from bot.emulator.console import bp as console_bp
    from bot.emulator.hub import CallbackObserver, Emulator
    from bot.emulator.state import WeComState

    cfg = runtime.config
    state = runtime.extras.get(STATE_KEY)
    if state is None:
        state = WeComState(corp_id=cfg.get("wecom.corp_id"), secret=cfg.get("wecom.secret"),
                           agent_id=int(cfg.get("wecom.agent_id")))
        runtime.extras[STATE_KEY] = state
    emulator = Emulator(app, runtime, state)
    try:
        emulator.sync_directory()
    except Exception:  # a database not migrated yet: the directory fills as members chat
        log.warning("emulator: could not load members from the database", exc_info=True)
    app.extensions[EXTENSION] = emulator
    app.register_blueprint(api_bp)
    app.register_blueprint(console_bp)
    app.wsgi_app = CallbackObserver(app.wsgi_app, emulator)  # type: ignore[method-assign]
