"""Media a member sends (image, voice, video, link) becomes an Attachment, downloaded at once:
WeCom media ids expire after 3 days. A failed download keeps the media id; a job retries it."""

from __future__ import annotations

import logging

from bot.context import Ctx
from integrations.asr import transcribe
from storage.blobs import store_blob
from storage.sales import Attachment

log = logging.getLogger(__name__)

EXTENSIONS = {"image": "jpg", "voice": "amr", "video": "mp4"}


def attachment_from_message(ctx: Ctx, *, customer_id: int | None, opportunity_id: int | None = None,
                            visit_id: int | None = None, tag: str | None = None) -> Attachment:
    msg = ctx.msg
    if customer_id is not None:
        ctx.about_customer(customer_id)
    att = Attachment(customer_id=customer_id, opportunity_id=opportunity_id, visit_id=visit_id, kind=msg.msg_type,
                     media_id=msg.media_id, uploaded_by=ctx.userid, tag=tag)
    if msg.msg_type == "link":
        att.url, att.title = msg.url, msg.title
    elif msg.media_id:
        att.filename = f"{msg.msg_type}-{msg.msg_id or msg.create_time}.{EXTENSIONS.get(msg.msg_type, 'bin')}"
        fetch_into(ctx, att)
    ctx.session.add(att)
    ctx.session.flush()
    return att


def fetch_into(ctx: Ctx, att: Attachment) -> None:
    """Download ``att.media_id`` into a blob; transcribe voice when a provider is configured."""
    try:
        content, ctype = ctx.rt.wecom.get_media(att.media_id or "")
    except Exception as exc:  # network, expired id: keep the id, the media_fetch job retries
        log.warning("media download failed", extra={"media_id": att.media_id, "error": type(exc).__name__})
        return
    blob = store_blob(ctx.session, content)
    att.blob_id, att.size, att.content_type = blob.id, blob.size, ctype
    if att.kind == "voice":
        att.transcript = transcribe(ctx.rt.config.section("integrations.asr"), content, ctype)
        if att.transcript and ctx.archived is not None and ctx.archived.media_id == att.media_id:
            ctx.archived.content = att.transcript  # searchable like text
