"""Upload links: files (Excel, PDF, Word) cannot be sent to a WeCom app, so the bot hands out a link
to an upload page that WeCom OAuth opens as the member, tied to one visit or opportunity."""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from bot.context import Ctx
from storage.sales import UploadToken
from storage.types import utcnow


def upload_link(ctx: Ctx, target: dict[str, Any]) -> str:
    token = secrets.token_urlsafe(24)
    ttl = int(ctx.rt.config.get("server.upload_link_ttl_s"))
    ctx.session.add(UploadToken(token=token, userid=ctx.userid, target=target,
                                expires_at=utcnow() + timedelta(seconds=ttl)))
    base = str(ctx.rt.config.get("server.public_base_url")).rstrip("/")
    return f"{base}/upload/{token}"
