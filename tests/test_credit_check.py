"""The nightly credit check against the provider's contract (integrations/credit.py): the batch endpoint
when configured, one GET per customer otherwise; failures per customer; a rerun after a crash."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
import responses
from sqlalchemy import func, select

import jobs.credit_check
from bot.app import create_app
from domain.credit_code import check_character
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.models import Card as CardRow
from storage.models import OutboxMessage
from storage.payments import CreditRating
from storage.sales import Customer, Opportunity
from tests.harness import Chat

CREDIT_API = "https://credit.test/v1/rating"
BATCH_API = "https://credit.test/v1/ratings:batch"
# customers 1–6 have a credit code, 7 only a name; 4 has only a won deal (not checked)
CODES: dict[int, str | None] = {
    i: (body + check_character(body) if body else None)
    for i, body in {1: "91330100716105852", 2: "91110000802100433", 3: "91310000MA1FL0A11",
                    4: "91440300MA5G0B022", 5: "91320500MA1M0C033", 6: "91330100MA2B0D044", 7: None}.items()}


@pytest.fixture
def customers(rt, company) -> dict[int, str]:
    """Seven customers, each with an open opportunity (customer 4: a won one; customer 6: two open ones of
    two owners), owned by zhangsan and lisi; returns id → name."""
    names = {}
    with rt.db.transaction() as s:
        for i, code in CODES.items():
            owner = "zhangsan" if i % 2 else "lisi"
            c = Customer(id=i, name=f"测试客户{i}有限公司", name_key=f"测试客户{i}", credit_code=code, owner_userid=owner)
            s.add(c)
            s.flush()
            names[i] = c.name
            s.add(Opportunity(customer_id=i, owner_userid=owner, amount=Decimal("10000"),
                              stage="won" if i == 4 else "demo"))
            if i == 6:
                s.add(Opportunity(customer_id=i, owner_userid="zhangsan", amount=Decimal("5000"), stage="lead"))
    return names


def make(make_runtime, **credit: Any):
    settings = {"enabled": True, "base_url": CREDIT_API, **credit}
    return make_runtime(**{f"integrations__credit__{k}": v for k, v in settings.items()})


def run(rt, name: str = "credit_check") -> str | None:
    return run_job(rt, load_jobs()[name], f"{name}-{uuid.uuid4().hex}")


class Killed(Exception):
    """The worker process dies (not a lookup failure: nothing catches it)."""


def key_of(item: dict[str, Any]) -> str:
    return item.get("credit_code") or item["name"]


def query_of(req: Any) -> str:
    q = parse_qs(urlsplit(req.url).query)
    return (q.get("credit_code") or q["name"])[0]


def stored(rt) -> dict[int, list[str]]:
    with rt.db.sessions() as s:
        out: dict[int, list[str]] = {}
        for r in s.scalars(select(CreditRating).order_by(CreditRating.id)):
            out.setdefault(r.customer_id, []).append(r.rating)
        return out


def outbox(rt) -> list[OutboxMessage]:
    with rt.db.sessions() as s:
        return list(s.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))


def batch_answer(ratings: dict[str, Any]):
    """A batch endpoint answering each item from ``ratings`` (by code or name): a rating string, a dict
    (the result as is), or absent (the item is left out of the answer)."""
    calls: list[dict[str, Any]] = []

    def callback(req: Any) -> tuple[int, dict[str, str], str]:
        body = json.loads(req.body)
        calls.append({"items": body["items"], "auth": req.headers.get("Authorization")})
        results = []
        for item in body["items"]:
            got = ratings.get(key_of(item))
            if got is None:
                continue
            results.append({"ref": item["ref"], **({"rating": got, "agency": "中诚信", "scale": "S&P",
                                                     "rated_on": "2026-11-28"} if isinstance(got, str) else got)})
        return 200, {}, json.dumps({"results": results[::-1]})  # any order

    return callback, calls


def no_get(req: Any) -> tuple[int, dict[str, str], str]:
    raise AssertionError(f"GET used although the batch endpoint is configured: {req.url}")


def all_keys() -> dict[str, str]:
    return {code or f"测试客户{i}有限公司": "BBB" for i, code in CODES.items()}


# ---- the batch endpoint ------------------------------------------------------------------------------


def test_batch_endpoint_is_used_when_configured_in_requests_of_batch_size(make_runtime, customers, http):
    rt = make(make_runtime, batch_url=BATCH_API, batch_size=2, key="secret-key")
    callback, calls = batch_answer(all_keys())
    http.add_callback(responses.POST, BATCH_API, callback=callback)
    http.add_callback(responses.GET, CREDIT_API, callback=no_get)
    assert run(rt) == "6 checked, 0 opportunities frozen, 0 failed"
    # 6 customers with an open opportunity (4's deal is won) → 3 requests of at most 2 items
    assert [len(c["items"]) for c in calls] == [2, 2, 2]
    assert {c["auth"] for c in calls} == {"Bearer secret-key"}
    items = [item for c in calls for item in c["items"]]
    assert sorted(key_of(i) for i in items) == sorted(k for k in all_keys() if k != CODES[4])
    assert {"ref", "name"} == set(next(i for i in items if "name" in i))  # no code: asked by name
    assert all(len({i["ref"] for i in c["items"]}) == len(c["items"]) for c in calls)
    assert stored(rt) == {i: ["BBB"] for i in (1, 2, 3, 5, 6, 7)}


def test_a_customer_missing_from_the_batch_answer_or_404_has_no_rating_like_a_404(make_runtime, customers, http):
    rt = make(make_runtime, batch_url=BATCH_API)
    ratings: dict[str, Any] = all_keys()
    del ratings[CODES[2]]  # left out of the answer
    ratings[CODES[3]] = {"status": 404}
    callback, calls = batch_answer(ratings)
    http.add_callback(responses.POST, BATCH_API, callback=callback)
    assert run(rt) == "4 checked, 0 opportunities frozen, 0 failed"
    assert len(calls) == 1
    assert sorted(stored(rt)) == [1, 5, 6, 7]


def test_per_item_errors_do_not_stop_the_run_and_are_counted(make_runtime, customers, http, wecom):
    rt = make(make_runtime, batch_url=BATCH_API, batch_size=3)
    chat = Chat(create_app(runtime=rt), rt, wecom)
    ratings: dict[str, Any] = {k: "BB+" for k in all_keys()}
    ratings[CODES[1]] = {"error": "quota exceeded"}
    ratings[CODES[2]] = "XYZ"  # not on the ladder
    ratings[CODES[3]] = {"agency": "no rating field"}
    callback, _ = batch_answer(ratings)
    http.add_callback(responses.POST, BATCH_API, callback=callback)
    # 1, 2, 3 fail one by one; 5, 6, 7 fall below BBB-: 5 and 7 one opportunity each, 6 two
    assert run(rt) == "3 checked, 4 opportunities frozen, 3 failed"
    assert sorted(stored(rt)) == [5, 6, 7]
    chat.deliver()
    assert len(chat.cards("zhoujiu")) == 3


def test_a_failed_batch_request_fails_its_customers_only(make_runtime, customers, http):
    rt = make(make_runtime, batch_url=BATCH_API, batch_size=3)
    callback, _ = batch_answer(all_keys())

    def flaky(req: Any) -> tuple[int, dict[str, str], str]:
        if CODES[1] in (req.body.decode() if isinstance(req.body, bytes) else req.body):
            return 503, {}, "busy"
        return callback(req)

    http.add_callback(responses.POST, BATCH_API, callback=flaky)
    assert run(rt) == "3 checked, 0 opportunities frozen, 3 failed"
    assert sorted(stored(rt)) == [5, 6, 7]


def test_every_lookup_failing_fails_the_job(make_runtime, customers, http):
    rt = make(make_runtime, batch_url=BATCH_API)
    http.add(responses.POST, BATCH_API, status=500)
    assert run(rt) is None
    assert stored(rt) == {}


# ---- one GET per customer (no batch endpoint) ---------------------------------------------------------


def test_without_batch_each_customer_is_asked_by_get_and_failures_are_counted(make_runtime, customers, http):
    rt = make(make_runtime, concurrency=3)
    seen: list[str] = []

    def answer(req: Any) -> tuple[int, dict[str, str], str]:
        q = query_of(req)
        seen.append(q)
        if q == CODES[1]:
            raise requests.ConnectionError("reset by peer")
        if q == CODES[2]:
            return 500, {}, "oops"
        if q == CODES[3]:
            return 404, {}, ""
        return 200, {}, json.dumps({"rating": "BBB", "agency": "中诚信", "scale": "S&P", "rated_on": "2026-11-28"})

    http.add_callback(responses.GET, CREDIT_API, callback=answer)
    assert run(rt) == "3 checked, 0 opportunities frozen, 2 failed"
    assert sorted(seen) == sorted(k for k in all_keys() if k != CODES[4])
    assert sorted(stored(rt)) == [5, 6, 7]


# ---- a crash half-way, then the rerun -----------------------------------------------------------------


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "get"])
@pytest.mark.parametrize("where", ["lookup", "freeze"])
def test_rerun_after_a_crash_mid_run_freezes_and_notifies_each_customer_once(make_runtime, customers, http,
                                                                             wecom, monkeypatch, batch, where):
    rt = make(make_runtime, **({"batch_url": BATCH_API, "batch_size": 2} if batch else {}))
    chat = Chat(create_app(runtime=rt), rt, wecom)
    monkeypatch.setattr(jobs.credit_check, "CHUNK", 2)
    # the worker dies at the third lookup, or while freezing the second chunk (customers 3 and 5)
    crash = {"after": 2 if where == "lookup" else 10 ** 6}
    asked: Counter[str] = Counter()

    def rating_of(q: str) -> str:
        asked[q] += 1
        if sum(asked.values()) > crash["after"]:
            raise Killed
        return "BB+"

    freezes = {"n": 0}
    real_enqueue_many = jobs.credit_check.enqueue_many

    def dying_enqueue_many(session: Any, items: Any) -> int:
        freezes["n"] += 1
        if where == "freeze" and freezes["n"] == 2:
            raise Killed
        return real_enqueue_many(session, items)

    monkeypatch.setattr(jobs.credit_check, "enqueue_many", dying_enqueue_many)

    def get(req: Any) -> tuple[int, dict[str, str], str]:
        q = query_of(req)
        return 200, {}, json.dumps({"rating": rating_of(q), "agency": "中诚信", "rated_on": "2026-11-28"})

    def post(req: Any) -> tuple[int, dict[str, str], str]:
        items = json.loads(req.body)["items"]
        return 200, {}, json.dumps({"results": [{"ref": i["ref"], "rating": rating_of(key_of(i))} for i in items]})

    http.add_callback(responses.GET, CREDIT_API, callback=get)
    http.add_callback(responses.POST, BATCH_API, callback=post)
    with pytest.raises(Killed):
        jobs.credit_check.credit_check(rt)
    with rt.db.sessions() as s:
        assert s.scalar(select(func.count()).select_from(CreditRating)) == 2  # the first chunk committed
    crash["after"] = 10 ** 6
    monkeypatch.setattr(jobs.credit_check, "enqueue_many", real_enqueue_many)
    assert run(rt) == "6 checked, 5 opportunities frozen, 0 failed"  # customers 1 and 2 were done already
    assert run(rt) == "6 checked, 0 opportunities frozen, 0 failed"  # and nothing changes the next night
    assert stored(rt) == {i: ["BB+"] for i in (1, 2, 3, 5, 6, 7)}
    with rt.db.sessions() as s:
        assert all(o.frozen == (o.stage != "won") for o in s.scalars(select(Opportunity)))
        cards = list(s.scalars(select(CardRow).where(CardRow.kind == "credit_freeze")))
    assert sorted(c.subject["customer_id"] for c in cards) == [1, 2, 3, 5, 6, 7]
    chat.deliver()
    assert len(chat.cards("zhoujiu")) == 6
    owner_texts = Counter((u, m.body["content"].split("」")[0]) for u in ("zhangsan", "lisi")
                          for m in chat.inbox(u) if m.msgtype == "text")
    assert set(owner_texts.values()) == {1} and len(owner_texts) == 7  # 6 has two owners, each told once
    six = [m.body["content"] for m in chat.inbox("zhangsan") if "测试客户6" in m.body.get("content", "")]
    assert len(six) == 1 and "您负责的 1 个未签约商机已冻结" in six[0]
