"""Monday 09:00: each manager gets the funnel heatmap of their team's last week (PRODUCT.md §1.6)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from itertools import islice
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import messages as M
from bot.out import Image, Text
from bot.outbox import enqueue_in_order
from domain.funnel import DwellSums, FunnelHeatmap, heatmap_of_sums, previous_week
from domain.funnel_chart import prepare_texts, render_heatmap_png
from domain.org import direct_reports, team_of
from domain.stages import DEFAULT_PIPELINE
from jobs.registry import job
from storage.funnel_queries import lz4_for_this_transaction, serial_for_this_transaction, stage_dwell_sums
from storage.models import Member, OutboxMessage
from storage.settings import get_setting

if TYPE_CHECKING:
    from bot.runtime import Runtime


def _team_reps(members: Mapping[str, Member], manager: str,
               manager_of: Mapping[str, str | None] | None = None,
               reports: Mapping[str, list[str]] | None = None) -> list[str]:
    team = team_of(manager_of if manager_of is not None else {u: m.manager_userid for u, m in members.items()},
                   manager, reports)
    return sorted(u for u in team if "rep" in (members[u].roles or []))


def _heatmap_stages(slas: Mapping[str, int] | None) -> list[str]:
    """The stage keys that are columns of the heatmap (those with an SLA; see domain.funnel)."""
    keys = {s.key for s in DEFAULT_PIPELINE.sla_stages() if s.sla_days is not None}
    keys |= {k for k, v in (slas or {}).items() if v}
    return sorted(keys)


def _title(members: Mapping[str, Member], manager: str) -> str | None:
    return f"{members[manager].name} 团队漏斗热力图" if manager in members else None


def _heatmap(members: Mapping[str, Member], reps: list[str], sums: DwellSums, start: datetime,
             slas: dict[str, int] | None) -> FunnelHeatmap:
    return heatmap_of_sums(sums, reps, start, rep_names={u: members[u].name for u in reps}, slas=slas)


def team_heatmap(s: Session, manager: str, start: datetime, slas: dict[str, int] | None = None,
                 members: dict[str, Member] | None = None) -> tuple[FunnelHeatmap, bytes] | None:
    """The heatmap and its PNG for the reps in ``manager``'s team, or None without reps.

    ``members`` (active members by userid) saves reloading them when called for every manager."""
    if members is None:
        members = {m.userid: m for m in s.scalars(select(Member).where(Member.active.is_(True)))}
    reps = _team_reps(members, manager)
    if not reps:
        return None
    heatmap = _heatmap(members, reps, stage_dwell_sums(s, reps, start, _heatmap_stages(slas)), start, slas)
    return heatmap, render_heatmap_png(heatmap, title=_title(members, manager))


def funnel_text(heatmap: FunnelHeatmap) -> str:
    """The text beside the image: the week and the flagged cells with their suggestions."""
    week = f"{heatmap.week_start:%m-%d}～{(heatmap.week_end - timedelta(seconds=1)):%m-%d}"
    lines = [M.FUNNEL_HEADER.format(week=week)]
    if heatmap.flagged:
        lines += [f"{c.rank}. {c.suggestion}" for c in heatmap.flagged]
    else:
        lines.append(M.FUNNEL_ALL_OK)
    return "\n".join(lines)


BATCH = 10  # managers whose images are drawn, then queued in one transaction


def _batches(items: Mapping[str, list[str]], size: int) -> Iterator[list[tuple[str, list[str]]]]:
    it = iter(items.items())
    while batch := list(islice(it, size)):
        yield batch


def _read_groups(batches: int) -> Iterator[int]:
    """How many batches each query on PostgreSQL sums: 1, 2, 4, 8… and what is left (ten batches: 1, 2, 4, 3).
    The first charts are drawn soon; each query, a scan of the whole stage history whatever the teams (~40 ms
    of it on the benchmark's data) plus its teams, is done about when the charts before it are drawn (drawing
    a batch takes longer than summing two); and few charts are left to draw after the last one, which is
    smaller than a doubling would make it. (1, 1, 2, 2, 4: one more scan and four batches drawn after it.)"""
    group, done = 1, 0
    while done < batches:
        yield min(group, batches - done)
        done += group
        group *= 2


def _dwell_sums(rt: Runtime, reps: list[str], start: datetime, stages: list[str]) -> DwellSums:
    with rt.db.sessions() as s:
        serial_for_this_transaction(s)  # this job is the parallelism: it draws while the database sums
        return stage_dwell_sums(s, reps, start, stages)


def _queue(rt: Runtime, items: list[tuple[str, Image | Text, str]]) -> int:
    """Queue the managers' images and texts in one transaction; how many managers got theirs queued."""
    with rt.db.transaction() as s:
        lz4_for_this_transaction(s)  # the images' base64 does not compress; pglz would try for long
        # a manager's image and text are queued together (in one transaction, by any run): two rows each
        return enqueue_in_order(s, items) // 2


@job("funnel_heatmap", "send each manager the weekly funnel heatmap of their team")
def funnel_heatmap_job(rt: Runtime) -> str:
    """The teams' dwell sums per rep and stage read from the database, the images drawn outside any
    transaction and queued ``BATCH`` managers at a time, each batch in one transaction. A week already sent
    to a manager (its dedup key is in the outbox) is not drawn again; should a concurrent run queue one
    meanwhile, the key keeps it once.

    The database works while this thread draws. On PostgreSQL a reader thread sums the teams a group of batches
    at a time (``_read_groups``), each query in one server process (the drawing keeps the other core busy), so
    the first charts are drawn while the database sums the rest on another core (four queries cost it more
    than one, but nobody waits for them); on SQLite, where the sums are added up in this process, one query
    sums every team. Meanwhile this thread lays out the names and titles of the charts.
    A writer thread queues each batch while the next one is drawn (at most two batches of images in memory,
    the one being written and the one being drawn)."""
    start, _ = previous_week(datetime.now(rt.config.tz), rt.config.tz)
    day = start.date().isoformat()
    with rt.db.sessions() as s:
        custom = get_setting(s, "stage_sla", {}) or {}
        slas = {k: int(v) for k, v in custom.items()} or None
        members = {m.userid: m for m in s.scalars(select(Member).where(Member.active.is_(True)))}
        keys = {u: f"funnel:{u}:{day}" for u, m in sorted(members.items()) if "manager" in (m.roles or [])}
        sent_before = set(s.scalars(select(OutboxMessage.dedup_key)
                                    .where(OutboxMessage.dedup_key.in_(list(keys.values())))))
        manager_of = {u: m.manager_userid for u, m in members.items()}
        reports = direct_reports(manager_of)
        teams = {u: reps for u, key in keys.items()
                 if key not in sent_before and (reps := _team_reps(members, u, manager_of, reports))}
    batches = list(_batches(teams, BATCH))
    stages = _heatmap_stages(slas)
    sent = 0
    with ThreadPoolExecutor(1, thread_name_prefix="funnel_heatmap-read") as reader, \
            ThreadPoolExecutor(1, thread_name_prefix="funnel_heatmap-write") as writer:
        if rt.db.is_postgres:
            reads = []
            for group in _read_groups(len(batches)):
                part = batches[len(reads):len(reads) + group]
                reading = reader.submit(_dwell_sums, rt, [r for batch in part for _, reps in batch for r in reps],
                                        start, stages)
                reads += [reading] * len(part)
        else:
            reads = [reader.submit(_dwell_sums, rt, [r for reps in teams.values() for r in reps], start,
                                   stages)] * len(batches)
        if reads:
            prepare_texts((((members[u].name for u in reps), _title(members, manager))
                           for manager, reps in teams.items()), until=reads[0].done)
        writing: Future[int] | None = None
        for batch, reading in zip(batches, reads, strict=True):
            sums = reading.result()
            items: list[tuple[str, Image | Text, str]] = []
            for manager, reps in batch:
                heatmap = _heatmap(members, reps, sums, start, slas)
                png = render_heatmap_png(heatmap, title=_title(members, manager))
                items += [(manager, Image(png, "funnel.png"), keys[manager]),
                          (manager, Text(funnel_text(heatmap)), keys[manager] + ":text")]
            if writing is not None:
                sent += writing.result()
            writing = writer.submit(_queue, rt, items)
        if writing is not None:
            sent += writing.result()
    return f"heatmaps sent to {sent} managers"
