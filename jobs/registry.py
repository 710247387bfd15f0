"""Scheduled jobs by name. A job is a function of the runtime returning a one-line summary."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.runtime import Runtime

JobFn = Callable[["Runtime"], str]


@dataclass(frozen=True)
class Job:
    name: str
    fn: JobFn
    doc: str


JOBS: dict[str, Job] = {}


def job(name: str, doc: str) -> Callable[[JobFn], JobFn]:
    def register(fn: JobFn) -> JobFn:
        JOBS[name] = Job(name, fn, doc)
        return fn
    return register


def load_jobs() -> dict[str, Job]:
    from jobs import (  # noqa: F401
        bank,
        cleanup,
        collection_reminders,
        credit_check,
        customer_events,
        erp_sync,
        forecast_snapshot,
        funnel_heatmap,
        incentives,
        link_clicks,
        media_fetch,
        note_reminders,
        rejection_alert,
    )

    return JOBS
