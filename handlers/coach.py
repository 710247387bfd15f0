"""话术 <客户>: three talk tracks for this customer now; 话术库: the admin's library."""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages as M
from bot.context import Ctx
from bot.out import Markdown
from bot.router import command
from domain.coach import TalkTrack as DomainTrack
from domain.coach import TrackSuggestion, WonCommunication, suggest_talk_tracks
from domain.stages import stage_name
from handlers.common import open_opportunities, resolve_customer, small_int
from handlers.stages import resolve_stage_or_reply
from storage.behaviour import TalkTrack
from storage.sales import Customer, Opportunity, Visit

SALES = ("rep", "manager")
_TAG_RE = re.compile(r"\s(行业|阶段)\s+(\S+)")


def suggestions_for(s: Session, customer: Customer, last_message: str = "") -> list[TrackSuggestion]:
    opps = open_opportunities(s, customer.id)
    stage = opps[0].stage if opps else None
    library = [DomainTrack(t.title, t.text, t.industry, (t.stage,) if t.stage else ())
               for t in s.scalars(select(TalkTrack).order_by(TalkTrack.id))]
    won_rows = s.execute(
        select(Customer.name, Customer.industry, Visit.pain_point, Visit.next_step)
        .join(Visit, Visit.customer_id == Customer.id)
        .where(Customer.id.in_(select(Opportunity.customer_id).where(Opportunity.stage == "won")),
               Visit.status == "done")
        .order_by(Visit.id.desc()).limit(500)).all()
    won = [WonCommunication(name, "；".join(x for x in (pain, nxt) if x), industry)
           for name, industry, pain, nxt in won_rows if pain or nxt]
    return suggest_talk_tracks(library, won, industry=customer.industry, stage=stage, last_message=last_message)


def render(customer: Customer, stage: str | None, tracks: list[TrackSuggestion]) -> str:
    head = M.COACH_HEADER.format(customer=customer.name, industry=customer.industry or "未填行业",
                                 stage=stage_name(stage) if stage else "无进行中商机")
    if not tracks:
        return head + "\n" + M.COACH_EMPTY
    body = [f"**{i}.** {t.text}\n> <font color=\"comment\">来源：{t.source}</font>" for i, t in enumerate(tracks, 1)]
    return head + "\n" + "\n".join(body)


@command("话术", roles=SALES, example="话术 杭州云栖", summary="为客户推荐 3 条话术")
def coach(ctx: Ctx, args: str) -> None:
    customer = resolve_customer(ctx, args, redo="话术 {customer}")
    if customer is None:
        return
    opps = open_opportunities(ctx.session, customer.id)
    tracks = suggestions_for(ctx.session, customer)
    ctx.reply(Markdown(render(customer, opps[0].stage if opps else None, tracks)))


@command("话术库 新增", "话术库 列表", "话术库 删除", "话术库", roles=("admin",),
         example="话术库 新增 三甲医院降本 | 先算清设备停机一天的损失…… 行业 医疗器械 阶段 方案演示",
         summary="管理话术库")
def library(ctx: Ctx, args: str) -> None:
    text = ctx.msg.text
    if text.startswith("话术库 新增"):
        title, sep, body = args.partition("|")
        tags = dict(_TAG_RE.findall(" " + body))
        body = _TAG_RE.sub("", " " + body).strip()
        if not sep or not title.strip() or len(body) < 5:
            ctx.reply(M.COACH_LIBRARY_USAGE)
            return
        stage = None
        if "阶段" in tags:
            stage = resolve_stage_or_reply(ctx, tags["阶段"])
            if stage is None:
                return
        row = TalkTrack(title=title.strip()[:128], text=body, industry=tags.get("行业"), stage=stage,
                        created_by=ctx.userid)
        ctx.session.add(row)
        ctx.session.flush()
        ctx.audit("add_talk_track", f"talk_track:{row.id}", title=row.title)
        ctx.reply(M.COACH_ADDED.format(id=row.id, title=row.title))
    elif text.startswith("话术库 删除"):
        ref = args.strip().lstrip("#")
        number = small_int(ref)
        row = ctx.session.get(TalkTrack, number) if number is not None else None
        if row is None:
            ctx.reply(M.COACH_NOT_FOUND.format(id=ref or "?"))
            return
        ctx.audit("remove_talk_track", f"talk_track:{row.id}", title=row.title)
        ctx.session.delete(row)
        ctx.reply(M.COACH_REMOVED.format(id=row.id, title=row.title))
    else:
        rows = list(ctx.session.scalars(select(TalkTrack).order_by(TalkTrack.id)))
        if not rows:
            ctx.reply(M.COACH_LIBRARY_EMPTY)
            return
        ctx.reply("\n".join([M.COACH_LIBRARY_HEADER.format(n=len(rows))] + [
            f"#{r.id}《{r.title}》｜{r.industry or '通用'}｜{stage_name(r.stage) if r.stage else '任意阶段'}"
            for r in rows]))
