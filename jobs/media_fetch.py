"""Retry media downloads that failed when the message arrived (WeCom media ids live 3 days)."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from integrations.asr import transcribe
from jobs.registry import job
from storage.blobs import store_blob
from storage.sales import Attachment
from storage.types import utcnow

if TYPE_CHECKING:
    from bot.runtime import Runtime

log = logging.getLogger(__name__)


@job("media_fetch", "retry downloading media whose download failed")
def media_fetch(rt: Runtime) -> str:
    since = utcnow() - timedelta(days=3)
    fetched = failed = 0
    with rt.db.sessions() as s:
        ids = list(s.scalars(select(Attachment.id).where(Attachment.blob_id.is_(None),
                                                         Attachment.media_id.is_not(None),
                                                         Attachment.created_at >= since)))
    for att_id in ids:
        with rt.db.transaction() as s:
            att = s.get(Attachment, att_id)
            if att is None or att.blob_id is not None:
                continue
            try:
                content, ctype = rt.wecom.get_media(att.media_id or "")
            except Exception as exc:
                log.warning("media download retry failed", extra={"attachment": att_id, "error": type(exc).__name__})
                failed += 1
                continue
            blob = store_blob(s, content)
            att.blob_id, att.size, att.content_type = blob.id, blob.size, ctype
            if att.kind == "voice" and not att.transcript:
                att.transcript = transcribe(rt.config.section("integrations.asr"), content, ctype)
            fetched += 1
    return f"{fetched} fetched, {failed} still failing"
