"""Template safety: when more than 30% of a team's submissions today were rejected for missing
items, tell the admins which items were missing most (PRODUCT.md §1.3). Once per team per day."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot import messages as M
from bot.out import Text
from bot.outbox import enqueue
from domain.gates import rejection_alert
from jobs.registry import job
from storage.models import Member
from storage.sales import Submission
from storage.settings import tunable

if TYPE_CHECKING:
    from bot.runtime import Runtime


@job("rejection_alert", "alert admins when too many of a team's submissions were rejected today")
def rejection_alert_job(rt: Runtime) -> str:
    tz = rt.config.tz
    today = datetime.now(tz).date()
    start = datetime.combine(today, time.min, tz)
    alerts = 0
    with rt.db.transaction() as s:
        threshold = float(tunable(s, rt.config, "alerts.rejection_share"))
        minimum = int(tunable(s, rt.config, "alerts.rejection_min_submissions"))
        rows = s.execute(select(Submission.team, Submission.accepted, Submission.missing)
                         .where(Submission.at >= start, Submission.at < start + timedelta(days=1))).all()
        by_team: dict[str, list[tuple[bool, list[str]]]] = {}
        for team, accepted, missing in rows:
            by_team.setdefault(team, []).append((accepted, list(missing or [])))
        members = {m.userid: m for m in s.scalars(select(Member))}
        admins = [m.userid for m in members.values() if "admin" in (m.roles or []) and m.active]
        for team, subs in sorted(by_team.items()):
            if len(subs) < minimum:
                continue
            found = rejection_alert(subs, threshold)
            if found is None:
                continue
            share, top = found
            leader = members.get(team)
            text = M.REJECTION_ALERT.format(
                team=f"{leader.name}" if leader else team, total=len(subs),
                rejected=sum(1 for a, _ in subs if not a), share=f"{share:.0%}",
                top="、".join(f"{name}（{n} 次）" for name, n in top))
            for admin in admins:
                if enqueue(s, admin, Text(text), dedup_key=f"rejection-alert:{team}:{today.isoformat()}:{admin}"):
                    alerts += 1
    return f"{alerts} alerts sent"
