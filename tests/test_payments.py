"""Issue 6's worked example through the chat, the jobs and the fakes of the bank and credit APIs."""

from __future__ import annotations

import csv
import uuid
from datetime import date
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import requests
import responses
from click.testing import CliRunner
from sqlalchemy import select

from bot.app import create_app
from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.payments import BankLine, ForecastSnapshotRow, PaymentEvent, Promise, Receivable
from storage.sales import Opportunity
from tests.harness import Chat, Clock

CODE = "91330100716105852F"
OTHER_CODE = "91110000802100433B"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(200)
BANK_API = "https://bank.test/v1/credits"
CREDIT_API = "https://credit.test/v1/rating"
SH = ZoneInfo("Asia/Shanghai")


@pytest.fixture
def bot(make_runtime, wecom, company, http, monkeypatch):
    rt = make_runtime(integrations__bank__enabled=True, integrations__bank__base_url=BANK_API,
                      integrations__credit__enabled=True, integrations__credit__base_url=CREDIT_API)
    chat = Chat(create_app(runtime=rt), rt, wecom)
    chat.clock = Clock(monkeypatch, rt)
    chat.clock.set("2026-11-28")
    chat.say("zhangsan", f"新客户 杭州云栖科技有限公司 信用代码 {CODE} 行业 软件")
    chat.say("zhangsan", "新商机 杭州云栖 15万 方案演示")
    chat.say("zhangsan", "新商机 杭州云栖 8万 线索 增购")
    chat.say("lisi", f"新客户 北京远景数据有限公司 信用代码 {OTHER_CODE}")
    created = chat.say("zhangsan", "合同 杭州云栖 HT2026001 150000 分期 100000@2026-12-10 50000@2027-01-10 账期 30天")
    assert "已登记合同 HT2026001" in created and "第2期 ¥50,000.00，2027-01-10 到期" in created
    return chat


def job(chat: Chat, name: str) -> str | None:
    out = run_job(chat.rt, load_jobs()[name], f"{name}-{uuid.uuid4().hex}")
    chat.deliver()
    return out


def texts(chat: Chat, userid: str) -> list[str]:
    return [m.body.get("content", "") for m in chat.new_messages(userid)]


def promises(chat: Chat) -> list[Promise]:
    with chat.rt.db.sessions() as s:
        return list(s.scalars(select(Promise).order_by(Promise.id)))


def receivables(chat: Chat) -> list[Receivable]:
    with chat.rt.db.sessions() as s:
        return list(s.scalars(select(Receivable).order_by(Receivable.seq)))


def make_promises(chat: Chat) -> None:
    a = chat.say("zhangsan", "回款承诺 HT2026001 100000 2026-12-10 第1期")
    assert "已请主管 王五 审批" in a
    chat.send_media("zhangsan", "image", PNG, "letter.jpg", "image/jpeg")  # the stamped letter → A
    b = chat.say("zhangsan", "回款承诺 HT2026001 50000 2026-12-10 第2期")
    assert "批准前按 C 级计" in b
    chat.say("zhangsan", "无")
    card = [c for c in chat.cards("wangwu") if c.body["main_title"]["title"] == "回款承诺审批（B 级）"][-1]
    assert "无权" in chat.click("zhangsan", card.task_id, "approve").text  # a rep cannot approve their own
    assert chat.click("wangwu", card.task_id, "approve").reply["ReplaceName"] == "已批准"
    c = chat.say("lisi", "回款承诺 北京远景 30000 2026-12-20")
    assert "C 级" in c
    chat.say("lisi", "无")


def test_forecast_finance_sees_a_and_approved_b_sales_see_all_three(bot: Chat):
    make_promises(bot)
    grades = [(p.letter_attachment_id is not None, p.approval) for p in promises(bot)]
    assert grades == [(True, "pending"), (False, "approved"), (False, "none")]
    finance = bot.say("qianqi", "回款预测")
    assert "2026-12：¥150,000.00（A ¥100,000.00｜B ¥50,000.00）" in finance
    sales = bot.say("wangwu", "回款预测")
    assert "2026-12：¥180,000.00（A ¥100,000.00｜B ¥50,000.00｜C ¥30,000.00）" in sales
    own = bot.say("lisi", "回款预测")
    assert "¥30,000.00（A ¥0.00｜B ¥0.00｜C ¥30,000.00）" in own  # a rep sees only their own


def test_bank_line_pays_instalments_earliest_first_and_the_same_line_again_changes_nothing(bot: Chat, http, tmp_path):
    make_promises(bot)
    bot.new_messages("zhangsan")
    f = tmp_path / "bank.csv"
    with f.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["账号", "流水号", "日期", "金额", "付款方", "摘要"])
        w.writerow(["6222-001", "T20261209001", "2026-12-09", "120,000.00", "杭州云栖科技有限公司", "HT2026001 货款"])
    from bot.cli import main

    env = {k: str(v) for k, v in (("SALESBOT_DATABASE_URL", bot.rt.config.get("database.url")),
                                  ("SALESBOT_REDIS_URL", bot.rt.config.get("redis.url")))}
    result = CliRunner().invoke(main, ["import", "bank", str(f)], env=env)
    assert result.exit_code == 0, result.output
    assert "imported 1" in result.output and "matched" in result.output
    first, second = receivables(bot)
    assert (first.outstanding, first.paid_on) == (Decimal("0.00"), date(2026, 12, 9))
    assert second.outstanding == Decimal("30000.00")
    bot.deliver()
    told = "\n".join(texts(bot, "zhangsan"))
    assert "到账通知" in told and "¥120,000.00" in told and "尚欠 ¥30,000.00" in told
    kept = {p.amount: p.kept for p in promises(bot)}
    assert kept[Decimal("100000.00")] == "on_time"
    with bot.rt.db.sessions() as s:
        events = list(s.scalars(select(PaymentEvent)))
    assert sorted(e.amount for e in events) == [Decimal("20000.00"), Decimal("100000.00")]
    again = CliRunner().invoke(main, ["import", "bank", str(f)], env=env)
    assert "imported 0" in again.output and "unchanged 1" in again.output
    assert [r.outstanding for r in receivables(bot)] == [Decimal("0.00"), Decimal("30000.00")]


def test_forecast_accuracy_for_december_is_75_percent(bot: Chat):
    make_promises(bot)
    bot.clock.set("2026-12-01")
    assert job(bot, "forecast_snapshot").startswith("snapshot 2026-12 = ¥150,000.00")
    from integrations.bank import Line
    from jobs.bank import ingest, match_pending

    ingest(bot.rt, [Line("6222-001", "T1", date(2026, 12, 9), Decimal("120000.00"), "杭州云栖科技有限公司",
                         "HT2026001 货款")], "import")
    match_pending(bot.rt)
    bot.clock.set("2027-01-01")
    out = job(bot, "forecast_snapshot")
    assert "2026-12 accuracy 75%" in out
    assert any("准确率 75%" in t and "¥150,000.00" in t and "¥120,000.00" in t for t in texts(bot, "qianqi"))
    assert "准确率 75%" in bot.say("qianqi", "回款预测 准确率 2026-12")
    with bot.rt.db.sessions() as s:
        assert s.get(ForecastSnapshotRow, "2026-12").amount == Decimal("150000.00")


def test_invoicing_countdown_and_overdue_reminders_each_sent_once(bot: Chat):
    bot.clock.set("2026-12-01")
    assert "已通知财务" in bot.say("zhangsan", "发货 HT2026001 第1期")
    card = bot.cards("qianqi")[-1]
    assert "无权" in bot.click("zhangsan", card.task_id, "invoiced").text
    assert bot.click("qianqi", card.task_id, "invoiced").reply["ReplaceName"] == "已开票"
    bot.deliver()
    assert any("已开票，距可催款还有 30 天" in t for t in texts(bot, "zhangsan"))
    assert "已记录发票号 FP-001" in bot.say("qianqi", "FP-001")
    expected = {"2026-12-24": "还有 7 天", "2026-12-28": "还有 3 天", "2026-12-30": "还有 1 天",
                "2026-12-31": "今日可催款", "2027-01-03": "已逾期 3 天", "2027-01-06": "已逾期 6 天"}
    for day in ("2026-12-02", "2026-12-23", *expected):
        bot.clock.set(day)
        job(bot, "collection_reminders")
        got = texts(bot, "zhangsan")
        if day in expected:
            assert len(got) == 1 and expected[day] in got[0] and "HT2026001 第1期" in got[0]
            job(bot, "collection_reminders")  # a rerun sends nothing new
            assert texts(bot, "zhangsan") == []
        else:
            assert got == []


def test_credit_fall_freezes_unsigned_opportunities_once_and_only_risk_unfreezes(bot: Chat, http):
    rating = {"rating": "BBB"}
    http.add_callback(responses.GET, CREDIT_API, callback=lambda req: (200, {}, __import__("json").dumps(
        {**rating, "agency": "中诚信", "scale": "S&P", "rated_on": "2026-11-28"})))
    assert "0 opportunities frozen" in job(bot, "credit_check")
    rating["rating"] = "BB+"
    assert "2 opportunities frozen" in job(bot, "credit_check")
    with bot.rt.db.sessions() as s:
        assert [o.frozen for o in s.scalars(select(Opportunity))] == [True, True]
    cards = bot.cards("zhoujiu")
    assert len(cards) == 1 and "BB+" in cards[0].body["main_title"]["desc"]
    assert any("已冻结" in t for t in texts(bot, "zhangsan"))
    assert "0 opportunities frozen" in job(bot, "credit_check")  # BB+ again next night: nothing new
    assert len(bot.cards("zhoujiu")) == 1
    refused = bot.say("zhangsan", "推进 杭州云栖 #1 方案确认")
    assert "已冻结" in refused and "BB+" in refused
    assert "已冻结" in bot.say("zhangsan", "回款承诺 杭州云栖 1万 2026-12-30")
    assert "无权" in bot.click("zhangsan", cards[0].task_id, "unfreeze").text  # a rep cannot
    assert "只有风控专员" in bot.say("admin", "解冻 杭州云栖")
    assert bot.click("zhoujiu", cards[0].task_id, "unfreeze").reply["ReplaceName"] == "已解冻"
    with bot.rt.db.sessions() as s:
        assert [o.frozen for o in s.scalars(select(Opportunity))] == [False, False]


def test_risk_officer_enters_a_rating_by_chat(bot: Chat):
    assert "XYZ" in bot.say("zhoujiu", "信用 杭州云栖 XYZ")  # refused, naming what was not understood
    with bot.rt.db.sessions() as s:
        assert not any(o.frozen for o in s.scalars(select(Opportunity)))
    reply = bot.say("zhoujiu", "信用 杭州云栖 BB")
    assert "已冻结 2 个" in reply
    assert "仅限风控专员" in bot.say("zhangsan", "信用 杭州云栖 AAA")


def test_bank_connector_pages_and_failures_change_nothing_then_catch_up(bot: Chat, http):
    pages = {None: {"items": [{"acct": "6222-001", "txn": "A1", "date": "2026-12-09", "amt": "100000.00",
                               "payer": "杭州云栖科技有限公司", "remark": "HT2026001"}], "next_cursor": "c1"},
             "c1": {"items": [{"acct": "6222-001", "txn": "A2", "date": "2026-12-10", "amt": "7.77",
                               "payer": "某某公司", "remark": "不明款项"}], "next_cursor": None}}
    state = {"fail": True}

    def api(request):
        if state["fail"]:
            raise requests.exceptions.ReadTimeout("bank down")
        from urllib.parse import parse_qs, urlparse

        cursor = parse_qs(urlparse(request.url).query).get("cursor", [None])[0]
        return 200, {}, __import__("json").dumps(pages[cursor])

    http.add_callback(responses.GET, BANK_API, callback=api)
    rt = bot.rt.config.with_overrides(integrations__bank__field_map="account=acct,transaction_id=txn,"
                                      "booked_on=date,amount=amt,payer_name=payer,memo=remark")
    bot.rt.config = rt
    assert job(bot, "bank_poll") is None  # failed run
    with bot.rt.db.sessions() as s:
        assert list(s.scalars(select(BankLine))) == []
    state["fail"] = False
    assert job(bot, "bank_poll") == "2 new lines, 1 matched, 1 to finance"
    assert job(bot, "bank_poll") == "0 new lines, 0 matched, 0 to finance"  # caught up, nothing twice
    card = bot.cards("qianqi")[-1]
    assert card.body["main_title"]["title"] == "银行流水待确认"
    assert bot.click("qianqi", card.task_id, "ignore").reply["ReplaceName"] == "已忽略"


def test_stress_test_sends_a_chart_and_flags_month_end_concentration(bot: Chat):
    make_promises(bot)
    bot.say("zhaoliu", "新客户 上海月末贸易有限公司")
    bot.say("zhaoliu", "回款承诺 上海月末 80000 2026-12-30")
    bot.say("zhaoliu", "无")
    bot.say("wangwu", "压力测试")
    got = bot.inbox("wangwu")[-2:]
    assert [m.msgtype for m in got] == ["image", "text"]
    text = got[-1].body["content"]
    assert "乐观" in text and "基准" in text and "悲观" in text
    assert "赵六 100% 回款集中在月底最后 3 天" in text
    assert "张三" not in text  # 张三's promises fall on 12-10: not concentrated at month end
    assert "仅限" in bot.say("zhangsan", "压力测试")


def test_contract_import_is_idempotent_and_reports_rejected_rows(bot: Chat, tmp_path):
    from jobs.imports import import_contracts_file

    f = tmp_path / "contracts.csv"
    f.write_text("合同号,客户,合同金额,期数,分期金额,到期日,负责人\n"
                 f"HT2026009,{CODE},200000,1,120000,2027-02-01,zhangsan\n"
                 "HT2026009,杭州云栖科技有限公司,200000,2,80000,2027-03-01,zhangsan\n"
                 "HT2026010,不存在的公司,1000,1,1000,2027-03-01,zhangsan\n"
                 "HT2026011,杭州云栖科技有限公司,abc,1,1000,2027-03-01,zhangsan\n", encoding="utf-8")
    first = import_contracts_file(bot.rt, f)
    assert (first.imported, first.updated) == (2, 0)
    assert [n for n, _ in first.rejected] == [4, 5] and "不存在的公司" in first.rejected[0][1]
    again = import_contracts_file(bot.rt, f)
    assert (again.imported, again.updated, again.unchanged) == (0, 0, 2)
    assert "已通知财务" in bot.say("zhangsan", "发货 HT2026009")  # imported contracts work in the chat


def test_a_command_sent_instead_of_the_awaited_answer_runs_and_the_dialog_keeps_what_it_had(bot: Chat):
    # the promise dialog waits for a stamped letter or 无; the rep moves on to another command
    assert "没有请回复「无」" in bot.say("zhangsan", "回款承诺 HT2026001 50000 2026-12-20 第2期")
    reply = bot.say("zhangsan", "客户 杭州云栖")
    assert reply.startswith("已结束「回款承诺函」：回款承诺 #1 已保存，暂无承诺函（收到后发「承诺函 #1」补传）。")
    assert "【杭州云栖科技有限公司】" in reply  # and the command ran
    [p] = promises(bot)
    assert p.letter_attachment_id is None and p.amount == Decimal("50000.00")
    assert "没有听懂「无」" in bot.say("zhangsan", "无")  # the dialog is over

    # finance is asked for an invoice number and asks for the forecast instead: not stored as the number
    bot.say("zhangsan", "发货 HT2026001 第1期")
    card = bot.cards("qianqi")[-1]
    assert bot.click("qianqi", card.task_id, "invoiced").reply["ReplaceName"] == "已开票"
    forecast = bot.say("qianqi", "回款预测")
    assert forecast.startswith("已结束「发票号」：未记录发票号。") and "本月起没有未兑现的回款承诺" in forecast
    assert [r.invoice_no for r in receivables(bot)] == [None, None]

    # a command the asker may not use ends the dialog too, and says whose it is
    bot.say("zhangsan", "发货 HT2026001 第2期")
    bot.click("qianqi", bot.cards("qianqi")[-1].task_id, "invoiced")
    refused = bot.say("qianqi", "规则 列表")
    assert refused.startswith("已结束「发票号」：未记录发票号。") and "「规则 列表」仅限管理员使用" in refused
    assert [r.invoice_no for r in receivables(bot)] == [None, None]


def test_shipping_by_customer_name_lists_what_can_be_invoiced_and_finance_hears_what_it_does_not_count(bot: Chat):
    assert bot.say("zhangsan", "发货 杭州云栖") == (
        "发货请写合同号。「杭州云栖科技有限公司」还有这些分期没有申请开票：\n  HT2026001：第1期、第2期\n"
        "例如：发货 HT2026001 第N期")
    bot.say("zhangsan", "发货 HT2026001 第1期")
    assert "  HT2026001：第2期\n" in bot.say("zhangsan", "发货 杭州云栖")
    assert bot.say("lisi", "发货 北京远景").startswith("「北京远景数据有限公司」没有待申请开票的合同分期。新合同请先登记")
    assert bot.say("lisi", "发货 杭州云栖") == (  # not 李四's customer: named like any unknown contract
        "没有找到合同「杭州云栖」。用法：发货 <合同号> [第N期]，例如：发货 HT2026001 第1期")

    bot.say("zhangsan", "回款承诺 杭州云栖 3万 2026-12-20")  # C grade: not in finance's view
    bot.say("zhangsan", "无")
    assert bot.say("qianqi", "回款预测").startswith(  # (then the invoice card that came meanwhile)
        "财务口径（A 级 + 已批准的 B 级）下，本月起没有未兑现的回款承诺；"
        "另有 1 笔共 ¥30,000.00 是 C 级或待主管批准的 B 级，不计入预测。\n")


def test_a_promise_for_a_day_already_past_is_refused_and_not_stored(bot: Chat):
    assert bot.say("zhangsan", "回款承诺 杭州云栖 5万 2025-01-01") == (
        "承诺日期 2025-01-01 已经过去（今天是 2026-11-28），承诺未登记。请填写客户答应付款的那一天，例如：月底、下周三、12月20日。")
    assert promises(bot) == []
    assert "已记录回款承诺 #1" in bot.say("zhangsan", "回款承诺 杭州云栖 5万 今天")  # today is still to come


def test_cancelling_the_letter_question_says_the_promise_stays_as_c_grade(bot: Chat):
    bot.say("zhangsan", "回款承诺 杭州云栖 5万 下周三")
    assert bot.say("zhangsan", "取消") == "已取消「回款承诺函」：回款承诺 #1 已保存，暂无承诺函（收到后发「承诺函 #1」补传）。"
    assert [p.amount for p in promises(bot)] == [Decimal("50000.00")]


def test_a_customer_not_found_suggests_creating_it_only_to_those_who_may(bot: Chat):
    assert bot.say("zhangsan", "客户 杭州新未来") == "没有找到客户「杭州新未来」。可以发送「新客户 杭州新未来」建档。"
    assert bot.say("zhoujiu", "信用 杭州新未来 BB") == "没有找到客户「杭州新未来」。请核对名称，或发送其统一社会信用代码。"
    assert bot.say("qianqi", "搜索 预算 客户 杭州新未来") == "没有找到客户「杭州新未来」。请核对名称，或发送其统一社会信用代码。"


def test_a_stamped_letter_that_comes_later_upgrades_the_promise_to_a(bot: Chat):
    bot.say("zhangsan", "回款承诺 杭州云栖 3万 2026-12-20")
    assert "之后收到可以发送「承诺函 #1」补传" in bot.say("zhangsan", "无")
    assert bot.say("zhangsan", "承诺函") .startswith("用法：承诺函 #<承诺编号>")
    assert bot.say("lisi", "承诺函 #1") == "没有找到您可以操作的回款承诺 #1。"  # not 李四's customer
    asked = bot.say("zhangsan", "承诺函 #1")
    assert asked.startswith("回款承诺 #1：「杭州云栖科技有限公司」¥30,000.00，2026-12-20。\n如有客户盖章的付款承诺函")
    assert "A 级" in bot.send_media("zhangsan", "image", PNG, "letter.jpg", "image/jpeg").text
    [p] = promises(bot)
    assert p.letter_attachment_id is not None
    assert "2026-12：¥30,000.00（A ¥30,000.00" in bot.say("qianqi", "回款预测")  # now in finance's forecast
    assert bot.say("zhangsan", "承诺函 #1") == "回款承诺 #1 已有盖章承诺函，是 A 级。"
    assert len(promises(bot)) == 1  # nothing registered twice
    assert "  · 承诺 #1 2026-12-20 ¥30,000.00（A（盖章承诺函））" in bot.say("zhangsan", "客户 杭州云栖")  # its number
