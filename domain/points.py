"""Collaboration points 协作积分 (PRODUCT.md §3): a ledger of entries; the balance is their sum, never below 0.

Every entry carries a ref (the collaboration request id, or the redemption's message id), so deciding
from the entries already booked makes a repeated click or a retried message add nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

CONFIRMATION_POINTS = 2

UNKNOWN_ITEM = "没有找到兑换项「{item}」。可兑换：{choices}"
EMPTY_CATALOGUE = "没有找到兑换项「{item}」，目前还没有可兑换的项目，请联系管理员添加。"
NOT_ENOUGH_POINTS = "积分不足：兑换「{item}」需要 {cost} 分，您当前余额 {balance} 分，还差 {missing} 分。"
CHOICE = "{item}（{cost} 分）"
CHOICE_SEPARATOR = "、"


class PointsReason(StrEnum):
    COLLABORATION = "collaboration"
    REDEMPTION = "redemption"


@dataclass(frozen=True)
class PointsEntry:
    """One ledger line: +points for a confirmed collaboration, −cost for a redemption; note says what for."""

    member: str
    delta: int
    reason: PointsReason
    ref: str
    note: str = ""


def balance(entries: Iterable[PointsEntry], member: str) -> int:
    """Σ delta of member's entries."""
    return sum(e.delta for e in entries if e.member == member)


def confirmation_credit(
    entries: Iterable[PointsEntry], request_id: str, rep: str, note: str = ""
) -> PointsEntry | None:
    """+2 to the requesting rep for a confirmed request; None when request_id was already credited."""
    if any(e.reason is PointsReason.COLLABORATION and e.ref == request_id for e in entries):
        return None
    return PointsEntry(
        member=rep, delta=CONFIRMATION_POINTS, reason=PointsReason.COLLABORATION, ref=request_id, note=note
    )


@dataclass(frozen=True)
class Redemption:
    """The outcome of 兑换: entry to book, or refusal to reply; both None when ref was already redeemed."""

    entry: PointsEntry | None = None
    refusal: str | None = None


def redeem(
    entries: Iterable[PointsEntry], member: str, item: str, catalogue: Mapping[str, int], ref: str
) -> Redemption:
    """−catalogue[item] when balance ≥ cost (the balance stays ≥ 0); otherwise a refusal saying why, in Chinese."""
    booked = list(entries)
    if any(e.reason is PointsReason.REDEMPTION and e.ref == ref for e in booked):
        return Redemption()
    name = item.strip()
    if name not in catalogue:
        if not catalogue:
            return Redemption(refusal=EMPTY_CATALOGUE.format(item=name))
        choices = CHOICE_SEPARATOR.join(
            CHOICE.format(item=k, cost=v) for k, v in sorted(catalogue.items(), key=lambda kv: kv[1])
        )
        return Redemption(refusal=UNKNOWN_ITEM.format(item=name, choices=choices))
    cost = catalogue[name]
    if cost <= 0:
        raise ValueError(f"catalogue item {name!r} must cost at least 1 point")
    current = balance(booked, member)
    if current < cost:
        return Redemption(
            refusal=NOT_ENOUGH_POINTS.format(item=name, cost=cost, balance=current, missing=cost - current)
        )
    return Redemption(
        entry=PointsEntry(member=member, delta=-cost, reason=PointsReason.REDEMPTION, ref=ref, note=name)
    )
