"""The bank matching benchmark compares the job with a hand-written SQL baseline (bench/jobs_bench.py); the ratio
means something only if the baseline does the job's work. On the benchmark's generated data (lines naming a
contract, lines paying under the customer's name, some by a subset of instalments, some that match nothing and go
to finance with candidates), the baseline writes exactly the rows the job writes, table by table."""

from __future__ import annotations

from typing import Any

from bench.jobs_bench import bank_effects, baseline_bank_poll
from bench.jobs_data import generate
from jobs.bank import match_pending


def test_bank_baseline_writes_what_the_job_writes(rt: Any) -> None:
    generate(rt.db.engine, 0.02, archive=False)  # 2,000 bank lines

    baseline = baseline_bank_poll(rt, inspect=bank_effects)
    counts = match_pending(rt)
    with rt.db.engine.connect() as conn:
        done = bank_effects(conn)

    # every step of the job happens on this data, so the comparison covers each
    assert min(baseline["step1"], baseline["step2"], baseline["step3"], baseline["unmatched"]) > 0
    assert counts == {"matched": baseline["matched"], "unmatched": baseline["unmatched"]}
    candidates = [body for _, msgtype, body, _ in done["outbox"] if msgtype == "template_card" and "confirm:" in body]
    assert candidates, "some finance cards list candidates"
    for table, rows in done.items():
        assert baseline["effects"][table] == rows, table
