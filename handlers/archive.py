"""搜索 <关键词> [客户 <名称>] [从 <日期>] [到 <日期>]: the conversation archive, scoped by role (§4.2)."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

from sqlalchemy import select

from bot import messages as M
from bot.context import Ctx
from bot.router import command
from domain.dates import resolve_relative_date
from handlers.common import member_name, resolve_customer, scope
from storage.sales import Customer
from storage.search import search_messages

_OPTION_RE = re.compile(r"\s(客户|从|到)\s+(\S+(?:\s+\S+)*?)(?=\s(?:客户|从|到)\s|$)")
SNIPPET = 40


def snippet(content: str, keyword: str) -> str:
    i = content.find(keyword)
    if i < 0:
        return content[:SNIPPET]
    start = max(0, i - SNIPPET // 2)
    text = content[start:start + SNIPPET]
    return ("…" if start else "") + text + ("…" if start + SNIPPET < len(content) else "")


@command("搜索", roles=None, example="搜索 预算 客户 杭州云栖 从 2026-11-01", summary="搜索聊天存档")
def search(ctx: Ctx, args: str) -> None:
    if not (ctx.member.roles or []):
        ctx.reply(M.NO_ROLE.format(name=ctx.member.name))
        return
    options = dict(_OPTION_RE.findall(" " + args))
    keyword = _OPTION_RE.sub("", " " + args).strip()
    if not keyword:
        ctx.reply(M.SEARCH_USAGE)
        return
    tz = ctx.rt.config.tz
    today = ctx.now.date()
    since = until = None
    for key, label in (("从", "since"), ("到", "until")):
        if key in options:
            day = resolve_relative_date(options[key], today, nearest=True)
            if day is None:
                ctx.reply(M.DATE_INVALID.format(text=options[key]))
                return
            start = datetime.combine(day, time.min, tz)
            if label == "since":
                since = start
            else:
                until = start + timedelta(days=1)
    customer_id = None
    if "客户" in options:
        customer = resolve_customer(ctx, options["客户"], redo=f"搜索 {args}")
        if customer is None:
            return
        customer_id = customer.id
    owners = scope(ctx)
    owned = None if owners is None else set(ctx.session.scalars(select(Customer.id).where(
        Customer.owner_userid.in_(owners))))
    hits = search_messages(ctx.session, keyword, owners=owners, owned_customers=owned, customer_id=customer_id,
                           since=since, until=until, limit=10)
    hits = [h for h in hits if h.id != (ctx.archived.id if ctx.archived else None)]  # not this very request
    if not hits:
        ctx.reply(M.SEARCH_NONE.format(keyword=keyword))
        return
    names = {c.id: c.name for c in ctx.session.scalars(select(Customer).where(
        Customer.id.in_({h.customer_id for h in hits if h.customer_id})))}
    lines = [M.SEARCH_HEADER.format(keyword=keyword, n=len(hits))]
    for h in hits:
        lines.append(M.SEARCH_LINE.format(at=h.sent_at.astimezone(tz).strftime("%Y-%m-%d %H:%M"),
                                          who=member_name(ctx.session, h.from_user),
                                          customer=names.get(h.customer_id or 0, "—"),
                                          snippet=snippet(h.content, keyword)))
    ctx.reply("\n".join(lines))
