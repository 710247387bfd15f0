"""Stage-history intervals for the funnel heatmap, loaded set-based for a group of reps, and their dwell
sums per rep and stage (what the heatmap is made of) for many teams at once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from sqlalchemy import Double, String, cast, func, literal_column, or_, select, text, type_coerce
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.orm import Session

from domain.funnel import StageInterval
from storage.payments import one_of
from storage.sales import Opportunity, StageChange


def stage_intervals(session: Session, reps: Iterable[str], start: datetime, end: datetime,
                    stages: Iterable[str] | None = None) -> list[StageInterval]:
    """Every stay in a stage of the reps' opportunities that overlaps [start, end) (only in ``stages``
    when given), ordered by opportunity and time."""
    return [iv for ivs in stage_intervals_by_rep(session, reps, start, end, stages).values() for iv in ivs]


def stage_intervals_by_rep(session: Session, reps: Iterable[str], start: datetime, end: datetime,
                           stages: Iterable[str] | None = None) -> dict[str, list[StageInterval]]:
    """``stage_intervals`` grouped by rep, for many reps (e.g. every manager's team) in one query: the end
    of each stay is the opportunity's next stage change before ``end`` (LEAD() in SQL), so only the stays
    that overlap the week leave the database."""
    reps = list(dict.fromkeys(reps))
    if not reps:
        return {}
    sc, o = StageChange.__table__, Opportunity.__table__
    left = func.lead(sc.c.at, type_=sc.c.at.type).over(partition_by=sc.c.opportunity_id, order_by=(sc.c.at, sc.c.id))
    stays = (select(o.c.owner_userid.label("rep"), sc.c.opportunity_id, sc.c.to_stage, sc.c.at,
                    left.label("left_at"), sc.c.id)
             .join(o, o.c.id == sc.c.opportunity_id)
             .where(o.c.owner_userid.in_(reps), sc.c.at < end)).subquery()
    q = (select(stays.c.rep, stays.c.opportunity_id, stays.c.to_stage, stays.c.at, stays.c.left_at)
         .where(or_(stays.c.left_at.is_(None), stays.c.left_at >= start))
         .order_by(stays.c.opportunity_id, stays.c.at, stays.c.id))
    if stages is not None:
        q = q.where(stays.c.to_stage.in_(list(stages)))
    out: dict[str, list[StageInterval]] = {}
    for rep, opp_id, stage, at, left_at in session.execute(q).all():  # one fetch, not a fetchone a row
        out.setdefault(rep, []).append(StageInterval(rep, str(opp_id), stage, at, left_at))
    return out


def stage_dwell_sums(session: Session, reps: Iterable[str], start: datetime,
                     stages: Iterable[str]) -> dict[tuple[str, str], tuple[float, int]]:
    """``domain.funnel.dwell_sums`` of the reps' stays in ``stages`` for the week from ``start``, the same floats
    (each stay's dwell seconds / 86 400, added in the order of opportunity id and time), computed set-based
    without a row per stay in Python: on PostgreSQL the database sums (``SUM(… ORDER BY …)``: plain float
    additions in that order, the dwell's seconds exact and rounded to a float once, as ``total_seconds``
    does); elsewhere (SQLite) the stays come as stored text, one tuple each, and are summed here."""
    reps = list(dict.fromkeys(reps))
    if not reps:
        return {}
    end = start + timedelta(days=7)
    dialect = session.get_bind().dialect
    pg = dialect.name == "postgresql"
    sc, o = StageChange.__table__, Opportunity.__table__
    left = func.lead(sc.c.at, type_=sc.c.at.type).over(partition_by=sc.c.opportunity_id, order_by=(sc.c.at, sc.c.id))
    stays = (select(o.c.owner_userid.label("rep"), sc.c.opportunity_id, sc.c.to_stage.label("stage"),
                    sc.c.at.label("entered_at"), left.label("left_at"), sc.c.id)
             .join(o, o.c.id == sc.c.opportunity_id)
             .where(one_of(o.c.owner_userid, reps, dialect), sc.c.at < end)).subquery()
    counted = (or_(stays.c.left_at.is_(None), stays.c.left_at >= start),
               one_of(stays.c.stage, list(stages), dialect))
    if pg:
        until = func.least(func.coalesce(stays.c.left_at, end), end)
        seconds = func.greatest(func.extract("epoch", until - stays.c.entered_at), 0)
        days = cast(seconds, Double()) / literal_column("86400")  # float8 / int4: one IEEE division
        q = (select(stays.c.rep, stays.c.stage,
                    func.sum(aggregate_order_by(days, stays.c.opportunity_id, stays.c.entered_at, stays.c.id)),
                    func.count())
             .where(*counted).group_by(stays.c.rep, stays.c.stage))
        return {(rep, stage): (total, n) for rep, stage, total, n in session.execute(q)}
    q = (select(stays.c.rep, stays.c.stage, type_coerce(stays.c.entered_at, String()),  # the stored text
                type_coerce(stays.c.left_at, String())).where(*counted)
         .order_by(stays.c.opportunity_id, stays.c.entered_at, stays.c.id))
    # dwell_in_week on naive UTC datetimes parsed straight from the text (SQLite stores UTC without a zone)
    lo, hi = start.astimezone(UTC).replace(tzinfo=None), end.astimezone(UTC).replace(tzinfo=None)
    parse, zero, day = datetime.fromisoformat, timedelta(0), 86_400
    sums: dict[tuple[str, str], tuple[float, int]] = {}
    for rows in session.execute(q).partitions(5000):  # a fetchmany each, not a fetchone a row; memory bounded
        for rep, stage, entered_s, left_s in rows:
            entered = parse(entered_s)
            if entered >= hi:
                continue
            left_at = None if left_s is None else parse(left_s)
            if left_at is None or left_at >= hi:
                dwell = hi - entered
            elif left_at >= lo:
                dwell = left_at - entered
            else:
                continue
            total, n = sums.get((rep, stage), (0.0, 0))
            sums[(rep, stage)] = (total + max(dwell, zero).total_seconds() / day, n + 1)
    return sums


def lz4_for_this_transaction(session: Session) -> None:
    """On PostgreSQL with LZ4 (14+, built with it): large values written in this transaction are compressed with
    LZ4 instead of the default pglz (``SET LOCAL default_toast_compression``; columns with a compression of their
    own keep it). The heatmap job's images (~175 KB of PNG each) do not compress: pglz can spend several ms of
    the server's time on each before storing it as it was, LZ4 less. Reading them back is the same.
    Elsewhere, or without LZ4, nothing changes."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text("SELECT set_config('default_toast_compression', 'lz4', true) FROM pg_settings "
                         "WHERE name = 'default_toast_compression' AND 'lz4' = ANY(enumvals)"))


def serial_for_this_transaction(session: Session) -> None:
    """On PostgreSQL: the queries of this transaction run in its own server process, without parallel workers
    (``SET LOCAL max_parallel_workers_per_gather = 0``). For a job that already keeps every core busy (the
    heatmap draws while the database sums): a parallel scan there only adds its workers' start and hand-over
    to the same CPU (a team group's sums: ~3 × the CPU of the serial plan, in about the same time). Elsewhere
    nothing changes."""
    if session.get_bind().dialect.name != "postgresql":
        return
    session.execute(text("SELECT set_config('max_parallel_workers_per_gather', '0', true)"))
