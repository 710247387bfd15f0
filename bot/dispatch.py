"""From a decrypted message to its effects: dedup → archive → who is asking → route → replies.

Everything one message causes (dedup key, archive row, the handler's changes, notifications to
others) commits in one transaction, so a retried or concurrent duplicate has exactly one effect.
Replies to the asker are settled through a ``ReplyChannel``: a passive reply when the handler finishes
within the budget, otherwise outbox rows in the same transaction.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import dialogs, members, router
from bot import messages as M
from bot.cards import handle_click
from bot.context import Ctx
from bot.inbound import Inbound
from bot.out import Card, CardUpdate, Out, Text, button_card
from bot.outbox import enqueue, enqueue_card_update
from bot.runtime import Runtime
from storage.models import AuditEntry, InboundMessage, Member, ProcessedCallback
from storage.models import Card as CardRow
from storage.types import utcnow

log = logging.getLogger(__name__)

PASSIVE_TEXT_LIMIT = 2048
KIND_NAMES = {"image": "图片", "voice": "语音", "video": "视频", "location": "位置", "link": "链接"}


@dataclass
class ReplyChannel:
    """Decides, once, whether the asker's replies go back passively or through the outbox."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    done: threading.Event = field(default_factory=threading.Event)
    abandoned: bool = False
    claimed: bool = False
    failed: bool = False  # nothing could be stored (database unreachable): WeCom must retry
    passive: Out | None = None

    def settle(self, session: Session, ctx_userid: str, msg: Inbound, replies: list[Out]) -> None:
        """Called inside the transaction, before commit."""
        with self.lock:
            use_passive = not self.abandoned
            if use_passive:
                self.claimed = True
        self.passive = None
        rest = list(replies)
        if use_passive and rest and _passive_ok(rest[0]):
            self.passive = rest.pop(0)
        for out in rest:
            if isinstance(out, CardUpdate):
                card = session.scalar(select(CardRow).where(CardRow.task_id == (msg.task_id or "")))
                if card is not None and msg.response_code:
                    enqueue_card_update(session, card, msg.response_code, out.replace_name)
            else:
                enqueue(session, ctx_userid, out)

    def wait(self, budget: float) -> tuple[bool, Out | None]:
        """Request side: (finished in time, passive reply)."""
        self.done.wait(budget)
        with self.lock:
            if not self.claimed:
                self.abandoned = True
                return False, None
        self.done.wait()  # the handler claimed the passive path and is committing
        return True, self.passive


def _passive_ok(out: Out) -> bool:
    if isinstance(out, CardUpdate):
        return True
    return isinstance(out, Text) and len(out.content.encode("utf-8")) <= PASSIVE_TEXT_LIMIT


@dataclass(frozen=True)
class Prefetched:
    """What the callback read from Redis in the round trip of its dedup key (the keys of ``prefetch_keys``)."""

    dialog: bytes | None  # the asker's dialog, as stored
    members_version: bytes | None  # bot.members.VERSION_KEY


def prefetch_keys(userid: str) -> tuple[str, str]:
    return dialogs.DialogStore.key(userid), members.VERSION_KEY


def process(rt: Runtime, msg: Inbound, channel: ReplyChannel | None = None,
            prefetched: Prefetched | None = None) -> bool:
    """Handle one message exactly once; False when it was a duplicate (nothing done)."""
    channel = channel or ReplyChannel()
    try:
        try:
            with rt.db.transaction() as s:
                archived = _claim_key(s, msg)
                version = members.version(rt, prefetched.members_version) if prefetched is not None else None
                ctx = Ctx(rt=rt, session=s, member=_member(rt, s, msg.from_user, version), msg=msg,
                          archived=archived)
                route(ctx, prefetched)
                channel.settle(s, ctx.userid, msg, ctx.replies)
                _write(s, archived, ctx.audits)
            return True
        except IntegrityError:
            # the durable key was taken by a concurrent delivery of the same message
            log.info("duplicate callback", extra={"key": msg.callback_key})
            return False
        except Exception:
            log.exception("handler failed", extra={"key": msg.callback_key, "from_user": msg.from_user,
                                                   "msg_type": msg.msg_type, "event": msg.event})
            try:
                return _apologise(rt, msg, channel)
            except Exception:
                # not even the archive row and the dedup key could be written (the database is down):
                # nothing happened, so the callback must fail and WeCom's retry must get through
                log.exception("could not record the message; WeCom will retry", extra={"key": msg.callback_key})
                channel.failed = True
                return False
    finally:
        channel.done.set()


def _apologise(rt: Runtime, msg: Inbound, channel: ReplyChannel) -> bool:
    """The handler's changes are rolled back; keep the archive and the dedup key, say sorry."""
    try:
        with rt.db.transaction() as s:
            archived = _claim_key(s, msg)
            member = _member(rt, s, msg.from_user)
            channel.settle(s, member.userid, msg, [Text(M.APOLOGY)])
            _write(s, archived, [])
        return True
    except IntegrityError:
        return False


# Core statements, compiled once: the rows every message writes skip the ORM's unit of work (on this
# path a flushed ORM row costs several times a Core insert; bench/README.md "Callback")
_CLAIM = insert(ProcessedCallback.__table__)
_ARCHIVE = insert(InboundMessage.__table__)
_AUDIT = insert(AuditEntry.__table__)
_ARCHIVE_COLUMNS = tuple(c.key for c in InboundMessage.__table__.columns if c.key != "id")


def _claim_key(s: Session, msg: Inbound) -> InboundMessage:
    """Take the dedup key; a message seen before (or a concurrent twin) raises IntegrityError here, on the
    primary key, and its transaction does nothing.

    Returns the archive row, not yet written: the handler may file it under a customer (or put a voice
    message's transcript in it), and ``_write`` inserts it as it then is, once, at the end of the
    transaction, instead of an insert now and an update later."""
    key = msg.callback_key
    now = utcnow()
    s.execute(_CLAIM, {"key": key, "processed_at": now})
    return InboundMessage(callback_key=key, msg_id=msg.msg_id, from_user=msg.from_user, msg_type=msg.msg_type,
                          event=msg.event, content=msg.content or msg.title or msg.event_key or "",
                          media_id=msg.media_id, raw=msg.raw, sent_at=msg.sent_at, received_at=now,
                          customer_id=None)


def _write(s: Session, archived: InboundMessage, audits: list[dict[str, Any]]) -> None:
    """The archive row and the handler's audit entries, in the message's transaction."""
    s.execute(_ARCHIVE, {k: getattr(archived, k) for k in _ARCHIVE_COLUMNS})
    if audits:
        s.execute(_AUDIT, audits)


def _member(rt: Runtime, s: Session, userid: str, version: bytes | None = None) -> Member:
    """The asker's row (from the process's cache when ``version`` is the members version it was cached
    under), created on first contact; a configured admin gets the admin role."""
    cached = members.cache(rt)
    member = cached.attach(s, userid, version) if version else None
    if member is None:
        member = s.scalar(select(Member).where(Member.userid == userid))
        if member is not None and version:
            cached.put(member, version)
    admins = set(rt.config.get("roles.admins"))
    if member is None:
        member = Member(userid=userid, name=userid, roles=["admin"] if userid in admins else [])
        s.add(member)
        s.flush()
        if userid not in admins:
            _request_access(s, member)
    elif userid in admins and "admin" not in (member.roles or []):
        member.roles = [*(member.roles or []), "admin"]
    return member


def _request_access(s: Session, member: Member) -> None:
    """Ask every admin, on a card, which role the newcomer should get."""
    admins = [m for m in s.scalars(select(Member).where(Member.active.is_(True)))
              if "admin" in (m.roles or [])]
    for admin in admins:
        card = button_card(M.ACCESS_REQUEST_TITLE, M.ACCESS_REQUEST_DESC.format(userid=member.userid),
                           [("销售代表", "grant:rep", 1), ("销售主管", "grant:manager", 1),
                            ("财务", "grant:finance", 1), ("客户成功", "grant:csm", 1),
                            ("风控专员", "grant:risk", 1), ("忽略", "ignore", 2)])
        enqueue(s, admin.userid, Card("access_request", card, {"userid": member.userid}),
                dedup_key=f"access:{member.userid}:{admin.userid}")


def _command_leaves(d: dialogs.Dialog, text: str) -> bool:
    """Whether ``text``, sent inside dialog ``d``, is a command rather than the dialog's answer: written out
    in full (``推进 杭州云栖 方案确认``; ``客户说…`` stays an answer), and not one ``d`` takes as an answer."""
    found = router.match(text, spaced=True) if text else None
    return found is not None and not set(found[0].keywords) & set(d.answers)


def route(ctx: Ctx, prefetched: Prefetched | None = None) -> None:
    msg = ctx.msg
    if msg.is_card_click:
        handle_click(ctx)
        return
    if msg.is_event:
        return  # enter_agent, menu events, external-contact changes: archived, nothing to answer
    store = dialogs.DialogStore(ctx.rt.redis)
    active = store.parse(prefetched.dialog) if prefetched is not None else store.get(ctx.userid)
    text = msg.text if msg.msg_type == "text" else ""
    if text == "取消":
        if active and active.dialog:
            d = active.dialog
            if d.on_cancel is None and d.on_leave is not None:  # what it wrote before asking stays: say so
                ctx.reply(M.CANCELLED_KEPT.format(dialog=d.title, detail=dialogs.leave(ctx, active)))
                return
            store.clear(ctx.userid)
            if d.on_cancel is not None:
                d.on_cancel(ctx, active.data)
            ctx.reply(M.CANCELLED.format(dialog=d.title))
        else:
            ctx.reply(M.NOTHING_TO_CANCEL)
        return
    if active is not None and active.dialog is None:  # a dialog this version no longer has: as if none
        store.clear(ctx.userid)
        active = None
    if active is not None and active.dialog is not None and text != "帮助":
        if not _command_leaves(active.dialog, text):
            dialogs.advance(ctx, active)
            return
        ctx.reply(M.DIALOG_LEFT.format(dialog=active.dialog.title, detail=dialogs.leave(ctx, active)))
    if msg.msg_type != "text":
        ctx.reply(M.NON_TEXT_NO_DIALOG.format(kind=KIND_NAMES.get(msg.msg_type, "消息")))
        return
    found = router.match(text)
    if found is None:
        if not ctx.member.roles:
            ctx.reply(M.NO_ROLE.format(name=ctx.member.name))
            return
        close = router.suggest(text, ctx.member.roles)
        if close is not None:
            ctx.reply(M.UNKNOWN_COMMAND_CLOSE.format(text=text[:30], suggestion=close.keywords[0],
                                                     example=close.example))
        else:
            ctx.reply(M.UNKNOWN_COMMAND.format(text=text[:30]))
        return
    cmd, args = found
    if not cmd.permits(ctx.member.roles):
        typed = max((kw for kw in cmd.keywords if text.strip().startswith(kw)), key=len, default=cmd.keywords[0])
        ctx.reply(M.ROLE_REQUIRED.format(command=typed, roles=M.who_may(cmd.roles or frozenset()),
                                         mine=ctx.roles_text))
        return
    cmd.handler(ctx, args)
