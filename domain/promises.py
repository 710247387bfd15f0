"""Payment promises and how much they can be believed (PRODUCT.md §2.1)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum


class Grade(StrEnum):
    """Credibility of a promise: A stamped letter, B approved instalment, C verbal."""

    A = "A"
    B = "B"
    C = "C"


class Keeping(StrEnum):
    """How a kept promise was kept."""

    ON_TIME = "on_time"
    LATE = "late"


def promise_grade(*, has_stamped_letter: bool, on_instalment: bool, manager_approved: bool) -> Grade:
    """The effective grade of a promise.

    A when a stamped payment commitment letter (盖章付款承诺函) is attached; else B when it points at a
    contract instalment and the rep's manager approved it; else C (verbal — and a B candidate still
    awaiting approval, or rejected, counts as C).
    """
    if has_stamped_letter:
        return Grade.A
    if on_instalment and manager_approved:
        return Grade.B
    return Grade.C


def counts_in_finance_forecast(grade: Grade) -> bool:
    """Finance plans cash on A and approved B only: True for A and (effective) B."""
    return grade in (Grade.A, Grade.B)


def needs_manager_approval(*, has_stamped_letter: bool, on_instalment: bool, manager_approved: bool) -> bool:
    """True when an approval card should go to the manager: on an instalment, no letter, not yet approved."""
    return on_instalment and not has_stamped_letter and not manager_approved


def promise_keeping(promised_on: date, received_on: date) -> Keeping:
    """A promise matched by a payment was kept ON_TIME when received_on ≤ promised_on, else LATE."""
    return Keeping.ON_TIME if received_on <= promised_on else Keeping.LATE


@dataclass(frozen=True)
class Promise:
    """A payment promise as the forecast and the stress test read it.

    ``receivable_id`` is the contract instalment (receivable) it points at, if any; a promise on a
    customer or a whole contract has none.
    """

    id: int
    customer_id: int
    rep_id: str
    amount: Decimal
    promised_on: date
    has_stamped_letter: bool = False
    receivable_id: int | None = None
    manager_approved: bool = False

    @property
    def grade(self) -> Grade:
        """The effective grade (see ``promise_grade``)."""
        return promise_grade(
            has_stamped_letter=self.has_stamped_letter,
            on_instalment=self.receivable_id is not None,
            manager_approved=self.manager_approved,
        )

    @property
    def in_finance_forecast(self) -> bool:
        """Whether finance counts this promise (effective grade A or B)."""
        return counts_in_finance_forecast(self.grade)

    @property
    def awaiting_approval(self) -> bool:
        """A B candidate the manager has not approved yet (shown as C until then)."""
        return needs_manager_approval(
            has_stamped_letter=self.has_stamped_letter,
            on_instalment=self.receivable_id is not None,
            manager_approved=self.manager_approved,
        )
