"""Monday 09:00: each manager gets the funnel heatmap of their team's last week (PRODUCT.md §1.6)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Image, Text
from bot.outbox import enqueue
from domain.funnel import FunnelHeatmap, funnel_heatmap, previous_week
from domain.funnel_chart import render_heatmap_png
from domain.org import team_of
from jobs.registry import job
from storage.funnel_queries import stage_intervals
from storage.models import Member, OutboxMessage
from storage.settings import get_setting

if TYPE_CHECKING:
    from bot.runtime import Runtime


def team_heatmap(s: Session, manager: str, start: datetime, slas: dict[str, int] | None = None,
                 members: dict[str, Member] | None = None) -> tuple[FunnelHeatmap, bytes] | None:
    """The heatmap and its PNG for the reps in ``manager``'s team, or None without reps.

    ``members`` (active members by userid) saves reloading them when called for every manager."""
    if members is None:
        members = {m.userid: m for m in s.scalars(select(Member).where(Member.active.is_(True)))}
    team = team_of({u: m.manager_userid for u, m in members.items()}, manager)
    reps = sorted(u for u in team if "rep" in (members[u].roles or []))
    if not reps:
        return None
    end = start + timedelta(days=7)
    intervals = stage_intervals(s, reps, start, end)
    heatmap = funnel_heatmap(intervals, reps, start, rep_names={u: members[u].name for u in reps}, slas=slas)
    return heatmap, render_heatmap_png(heatmap, title=f"{members[manager].name} 团队漏斗热力图" if manager in members
                                       else None)


def funnel_text(heatmap: FunnelHeatmap) -> str:
    """The text beside the image: the week and the flagged cells with their suggestions."""
    week = f"{heatmap.week_start:%m-%d}～{(heatmap.week_end - timedelta(seconds=1)):%m-%d}"
    lines = [M.FUNNEL_HEADER.format(week=week)]
    if heatmap.flagged:
        lines += [f"{c.rank}. {c.suggestion}" for c in heatmap.flagged]
    else:
        lines.append(M.FUNNEL_ALL_OK)
    return "\n".join(lines)


@job("funnel_heatmap", "send each manager the weekly funnel heatmap of their team")
def funnel_heatmap_job(rt: Runtime) -> str:
    start, _ = previous_week(datetime.now(rt.config.tz), rt.config.tz)
    sent = 0
    with rt.db.transaction() as s:
        custom = get_setting(s, "stage_sla", {}) or {}
        members = {m.userid: m for m in s.scalars(select(Member).where(Member.active.is_(True)))}
        managers = [u for u, m in members.items() if "manager" in (m.roles or [])]
        for manager in managers:
            key = f"funnel:{manager}:{start.date().isoformat()}"
            if s.scalar(select(OutboxMessage.id).where(OutboxMessage.dedup_key == key)) is not None:
                continue  # this week's was sent already (a rerun): do not draw it again
            result = team_heatmap(s, manager, start, {k: int(v) for k, v in custom.items()} or None, members)
            if result is None:
                continue
            heatmap, png = result
            if enqueue(s, manager, Image(png, "funnel.png"), dedup_key=key):
                enqueue(s, manager, Text(funnel_text(heatmap)), dedup_key=key + ":text")
                sent += 1
    return f"heatmaps sent to {sent} managers"
