"""ERP sync (§4.3): file or HTTP source, contract number ↔ rep, a report, idempotent."""

from __future__ import annotations

import uuid

import responses
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.payments import Contract, Receivable
from tests.harness import Chat

ROWS = ("合同号,客户,合同金额,期数,分期金额,到期日,负责人\n"
        "ERP-2026-001,杭州云栖科技有限公司,150000,1,100000,2026-12-10,zhangsan\n"
        "ERP-2026-001,杭州云栖科技有限公司,150000,2,50000,2027-01-10,zhangsan\n"
        "ERP-2026-002,杭州云栖科技有限公司,30000,1,30000,2027-02-01,nobody\n"
        "ERP-2026-003,,30000,1,30000,2027-02-01,zhangsan\n")


def env(chat: Chat) -> dict[str, str]:
    return {"SALESBOT_DATABASE_URL": chat.rt.config.get("database.url"),
            "SALESBOT_REDIS_URL": chat.rt.config.get("redis.url")}


def test_importing_the_same_erp_file_twice_changes_nothing_the_second_time(chat: Chat, company, tmp_path):
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    f = tmp_path / "erp.csv"
    f.write_text(ROWS, encoding="utf-8")
    first = CliRunner().invoke(main, ["import", "erp", str(f)], env=env(chat))
    assert first.exit_code == 0, first.output
    assert "imported 2, updated 0, unchanged 0, rejected 2" in first.output
    assert "row 4: rejected — 负责人「nobody」不是已登记的成员" in first.output
    assert "row 5: rejected — 缺少字段：客户" in first.output
    second = CliRunner().invoke(main, ["import", "erp", str(f)], env=env(chat))
    assert "imported 0, updated 0, unchanged 2" in second.output
    with chat.rt.db.sessions() as s:
        contract = s.scalar(select(Contract).where(Contract.number == "ERP-2026-001"))
        assert contract.owner_userid == "zhangsan" and contract.source == "erp"
        assert len(list(s.scalars(select(Receivable)))) == 2
    f.write_text(ROWS.replace("2027-01-10", "2027-01-20"), encoding="utf-8")
    third = CliRunner().invoke(main, ["import", "erp", str(f)], env=env(chat))
    assert "imported 0, updated 1, unchanged 1" in third.output


def test_erp_http_source_and_its_failure(make_runtime, wecom, http, company):
    rt = make_runtime(integrations__erp__enabled=True, integrations__erp__base_url="https://erp.test/api/contracts")
    from bot.app import create_app

    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    http.add(responses.GET, "https://erp.test/api/contracts", status=500)
    assert run_job(rt, load_jobs()["erp_sync"], uuid.uuid4().hex) is None  # a failed run changes nothing
    http.replace(responses.GET, "https://erp.test/api/contracts", json={"rows": [
        {"number": "ERP-9", "customer": "杭州云栖科技有限公司", "amount": "1000", "seq": 1, "instalment": "1000",
         "due_on": "2027-01-01", "owner": "zhangsan"}]})
    assert run_job(rt, load_jobs()["erp_sync"], uuid.uuid4().hex).startswith("imported 1")
    assert run_job(rt, load_jobs()["erp_sync"], uuid.uuid4().hex).startswith("imported 0, updated 0, unchanged 1")
