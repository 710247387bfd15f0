"""The live incentive board 实时激励看板 (PRODUCT.md §3): 我的看板 for a rep, 团队看板 for a manager.

The caller computes a Standing per team member (scores from domain.incentives over the month to
date, points balance, month-to-date bonus); this module ranks them and renders short lines for a phone.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from domain.bonus import format_bonus_amount
from domain.incentives import DEAL_TYPE_LABELS, HUNDRED, Attainment, DealType, DualTrackScore, Targets

REP_TITLE = "{name} · {year}年{month}月看板（截至{as_of_month}月{as_of_day}日）"
TEAM_TITLE = "团队看板 · {year}年{month}月（截至{as_of_month}月{as_of_day}日）"
SCORE_LINE = "综合得分 {total}｜过程 {process}｜结果 {result}"
SCORE_LINE_NO_TARGET = "综合得分 —（本月未设目标）｜过程 {process}"
RANK_LINE = "团队排名 第{rank}名（共{ranked}人）"
RANK_LINE_UNRANKED = "团队排名 —（未设目标，不参与排名）"
TRACK_LINE = "{track} {attained} / {target}（{percent}%）"
TRACK_LINE_NO_TARGET = "{track} {attained}（未设目标）"
BONUS_LINE = "本月奖金 {bonus}"
POINTS_LINE = "协作积分 {points} 分"
TEAM_ROW = "{rank}. {name} {total}（过程{process}/结果{result}）奖金{bonus} 积分{points}"
TEAM_ROW_NO_TARGET = "—. {name} 未设目标（过程{process}）奖金{bonus} 积分{points}"
TEAM_EMPTY = "团队里还没有成员。"


@dataclass(frozen=True)
class Standing:
    """One member's month to date, as the caller computed it (score exact, not yet rounded)."""

    member: str
    name: str
    score: DualTrackScore
    attained: Attainment
    targets: Targets
    points: int
    bonus_mtd: Decimal


@dataclass(frozen=True)
class TrackProgress:
    """One KPI track: credited amount attained (renewal′ for 续费) vs target; percent None without a target."""

    deal_type: DealType
    attained: Decimal
    target: Decimal
    percent: Decimal | None


@dataclass(frozen=True)
class RepBoard:
    """我的看板: the rep's score (rounded), rank among the ranked team members, tracks, bonus, points."""

    name: str
    month: date
    as_of: date
    score: DualTrackScore
    rank: int | None
    ranked: int
    tracks: tuple[TrackProgress, ...]
    bonus_mtd: Decimal
    points: int


@dataclass(frozen=True)
class TeamRow:
    """One line of 团队看板 (score rounded)."""

    member: str
    name: str
    rank: int | None
    score: DualTrackScore
    bonus_mtd: Decimal
    points: int


@dataclass(frozen=True)
class TeamBoard:
    """团队看板: rows by rank, members without a target last."""

    month: date
    as_of: date
    rows: tuple[TeamRow, ...]


def team_ranks(standings: Iterable[Standing]) -> dict[str, int | None]:
    """Competition ranking (1, 1, 3) by total rounded to 0.01, highest first; None when there is no total."""
    shown = {s.member: s.score.rounded().total for s in standings}
    totals = [t for t in shown.values() if t is not None]
    return {m: None if t is None else 1 + sum(1 for other in totals if other > t) for m, t in shown.items()}


def track_progress(attained: Attainment, targets: Targets) -> tuple[TrackProgress, ...]:
    """Per track 新签/续费/增购: attained, target, attained / target × 100 (None when the target is 0)."""
    return tuple(
        TrackProgress(
            deal_type=t,
            attained=attained.of(t),
            target=targets.of(t),
            percent=attained.of(t) / targets.of(t) * HUNDRED if targets.of(t) > 0 else None,
        )
        for t in DealType
    )


def rep_board(standings: Sequence[Standing], member: str, month: date, as_of: date) -> RepBoard:
    """The board of member, ranked among standings (their team, member included)."""
    ranks = team_ranks(standings)
    mine = next(s for s in standings if s.member == member)
    return RepBoard(
        name=mine.name,
        month=month,
        as_of=as_of,
        score=mine.score.rounded(),
        rank=ranks[member],
        ranked=sum(1 for r in ranks.values() if r is not None),
        tracks=track_progress(mine.attained, mine.targets),
        bonus_mtd=mine.bonus_mtd,
        points=mine.points,
    )


def team_board(standings: Iterable[Standing], month: date, as_of: date) -> TeamBoard:
    """Every member's row, ordered by rank then name; members without a total last, by name."""
    members = list(standings)
    ranks = team_ranks(members)
    rows = [
        TeamRow(s.member, s.name, ranks[s.member], s.score.rounded(), s.bonus_mtd, s.points) for s in members
    ]
    rows.sort(key=lambda r: (r.rank is None, r.rank or 0, r.name))
    return TeamBoard(month=month, as_of=as_of, rows=tuple(rows))


def _score(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def _percent(value: Decimal) -> str:
    return f"{value.quantize(Decimal(1), rounding=ROUND_HALF_UP)}"


def render_rep_board(board: RepBoard) -> str:
    """我的看板 as short lines: title, score, rank, one line per track, bonus, points."""
    lines = [
        REP_TITLE.format(
            name=board.name,
            year=board.month.year,
            month=board.month.month,
            as_of_month=board.as_of.month,
            as_of_day=board.as_of.day,
        )
    ]
    if board.score.total is None:
        lines.append(SCORE_LINE_NO_TARGET.format(process=_score(board.score.process)))
        lines.append(RANK_LINE_UNRANKED)
    else:
        lines.append(
            SCORE_LINE.format(
                total=_score(board.score.total),
                process=_score(board.score.process),
                result=_score(board.score.result),
            )
        )
        lines.append(RANK_LINE.format(rank=board.rank, ranked=board.ranked))
    for track in board.tracks:
        label = DEAL_TYPE_LABELS[track.deal_type]
        if track.percent is None:
            lines.append(
                TRACK_LINE_NO_TARGET.format(track=label, attained=format_bonus_amount(track.attained))
            )
        else:
            lines.append(
                TRACK_LINE.format(
                    track=label,
                    attained=format_bonus_amount(track.attained),
                    target=format_bonus_amount(track.target),
                    percent=_percent(track.percent),
                )
            )
    lines.append(BONUS_LINE.format(bonus=format_bonus_amount(board.bonus_mtd)))
    lines.append(POINTS_LINE.format(points=board.points))
    return "\n".join(lines)


def render_team_board(board: TeamBoard) -> str:
    """团队看板 as one title line and one line per member."""
    lines = [
        TEAM_TITLE.format(
            year=board.month.year,
            month=board.month.month,
            as_of_month=board.as_of.month,
            as_of_day=board.as_of.day,
        )
    ]
    if not board.rows:
        lines.append(TEAM_EMPTY)
    for row in board.rows:
        common = {
            "name": row.name,
            "process": _score(row.score.process),
            "bonus": format_bonus_amount(row.bonus_mtd),
            "points": row.points,
        }
        if row.rank is None:
            lines.append(TEAM_ROW_NO_TARGET.format(**common))
        else:
            lines.append(
                TEAM_ROW.format(
                    rank=row.rank, total=_score(row.score.total), result=_score(row.score.result), **common
                )
            )
    return "\n".join(lines)
