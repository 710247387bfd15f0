"""Issue 4 as reps live it, through the real callback: customers, visits, stage gates, access, safety."""

from __future__ import annotations

from decimal import Decimal

import pytest
import responses
from sqlalchemy import select

from jobs.registry import load_jobs
from jobs.scheduler import run_job
from storage.copilot import MeetingNote
from storage.sales import Attachment, Blob, Customer, Evidence, Opportunity, StageChange, Visit
from tests.harness import Chat

CODE = "91330100716105852F"  # a valid unified social credit code
VOICE = b"#!AMR\n" + bytes(range(200))
PNG = b"\x89PNG\r\n\x1a\n" + bytes(300)


@pytest.fixture
def yunqi(chat: Chat, company) -> Chat:
    """张三 owns 杭州云栖科技有限公司 with one opportunity in 方案演示."""
    assert "已建档" in chat.say("zhangsan", f"新客户 杭州云栖科技有限公司 信用代码 {CODE} 行业 软件 区域 华东")
    assert "已为「杭州云栖科技有限公司」新建商机" in chat.say("zhangsan", "新商机 杭州云栖 15万 方案演示")
    return chat


def one(rt, model, *where):
    with rt.db.sessions() as s:
        return s.scalar(select(model).where(*where))


def rows(rt, model, *where):
    with rt.db.sessions() as s:
        return list(s.scalars(select(model).where(*where)))


def test_opportunity_created_in_a_gated_stage_starts_at_lead_and_says_so(chat: Chat, company):
    chat.say("zhangsan", f"新客户 杭州云栖科技有限公司 信用代码 {CODE}")
    reply = chat.say("zhangsan", "新商机 杭州云栖 12.5万 需求诊断 续费")
    assert "¥125,000.00" in reply and "续费" in reply
    assert "推进 杭州云栖科技有限公司 需求诊断" in reply
    opp = one(chat.rt, Opportunity)
    assert (opp.stage, opp.amount, opp.kind) == ("lead", Decimal("125000.00"), "renewal")


def test_visit_with_voice_pain_point_and_budget_is_a_quality_visit_and_the_clip_is_stored(yunqi: Chat):
    chat = yunqi
    first = chat.say("zhangsan", "拜访 杭州云栖 预算:待确认 下一步:周五演示")
    assert "痛点确认" in first and "语音" in first
    reply = chat.send_media("zhangsan", "voice", VOICE, "v.amr", "audio/amr")
    chat.deliver()
    assert "高质量拜访" in reply.text + "".join(m.body.get("content", "") for m in chat.new_messages("zhangsan"))
    visit = one(chat.rt, Visit)
    assert visit.quality and visit.status == "done" and visit.budget == "待确认"
    clip = one(chat.rt, Attachment, Attachment.visit_id == visit.id)
    assert clip.kind == "voice" and clip.tag == "pain"
    blob = one(chat.rt, Blob, Blob.id == clip.blob_id)
    assert blob.content == VOICE  # downloaded at once: the media id expires in 3 days


def test_visit_without_budget_names_it_with_its_options_and_a_bare_answer_completes_it(yunqi: Chat):
    chat = yunqi
    reply = chat.say("zhangsan", "拜访 杭州云栖 痛点:现有系统无法支撑双十一峰值流量 下一步:下周三出方案")
    assert "预算情况" in reply and "已明确/待确认/暂不披露" in reply
    done = chat.say("zhangsan", "已明确")
    assert "高质量拜访" in done
    visit = one(chat.rt, Visit)
    assert (visit.budget, visit.quality) == ("已明确", True)
    assert visit.pain_point == "现有系统无法支撑双十一峰值流量"


def test_move_names_every_missing_item_then_completes_when_the_last_arrives(yunqi: Chat):
    chat = yunqi
    reply = chat.say("zhangsan", "推进 杭州云栖 方案确认")
    assert "还缺 2 项" in reply and "竞品对比表" in reply and "预算情况" in reply
    assert "已明确/待确认/暂不披露" in reply
    opp = one(chat.rt, Opportunity)
    assert opp.stage == "demo" and opp.pending_stage == "solution_confirmed"
    image_reply = chat.send_media("zhangsan", "image", PNG, "compare.png", "image/png").text
    assert "已收到竞品对比表" in image_reply and "预算情况" in image_reply
    done = chat.say("zhangsan", "已明确")
    assert "方案演示 → 方案确认" in done
    opp = one(chat.rt, Opportunity)
    assert opp.stage == "solution_confirmed" and opp.pending_stage is None
    history = rows(chat.rt, StageChange, StageChange.opportunity_id == opp.id)
    assert [(h.from_stage, h.to_stage, h.actor) for h in history][-1] == ("demo", "solution_confirmed", "zhangsan")
    evidence = {e.item for e in rows(chat.rt, Evidence, Evidence.opportunity_id == opp.id)}
    assert evidence == {"competitor", "budget"}


def test_a_visit_can_supply_the_last_missing_item_of_a_pending_move(yunqi: Chat):
    chat = yunqi
    chat.say("zhangsan", "推进 杭州云栖 方案确认")
    chat.say("zhangsan", "取消")  # the member leaves the dialog; the wish to move is kept
    chat.send_media("zhangsan", "image", PNG, "c.png", "image/png")  # outside the dialog: not evidence
    assert one(chat.rt, Opportunity).stage == "demo"
    chat.say("zhangsan", "推进 杭州云栖 方案确认")
    chat.send_media("zhangsan", "image", PNG, "c.png", "image/png")
    chat.say("zhangsan", "取消")
    reply = chat.say("zhangsan", "拜访 杭州云栖 痛点:需要替换老旧的本地部署系统 预算:已明确 下一步:报价")
    assert "方案演示 → 方案确认" in reply
    assert one(chat.rt, Opportunity).stage == "solution_confirmed"


def test_frozen_backward_and_unknown_stage_moves_are_refused_with_reasons(yunqi: Chat):
    chat = yunqi
    assert "不能从「方案演示」退回到「线索」" in chat.say("zhangsan", "推进 杭州云栖 线索")
    assert "不认识的阶段「下一阶段」" in chat.say("zhangsan", "推进 杭州云栖 下一阶段")
    with chat.rt.db.transaction() as s:
        opp = s.scalar(select(Opportunity))
        opp.frozen, opp.frozen_reason = True, "客户评级降至 BB+"
    assert "已冻结" in chat.say("zhangsan", "推进 杭州云栖 方案确认") and "BB+" in chat.say(
        "zhangsan", "推进 杭州云栖 方案确认")


def test_won_needs_contract_number_and_signed_amount_typed_with_their_labels(yunqi: Chat):
    chat = yunqi
    chat.say("admin", "必填 方案确认 无")
    chat.say("admin", "必填 报价谈判 无")
    reply = chat.say("zhangsan", "推进 杭州云栖 赢单")
    assert "合同号" in reply and "签约金额" in reply
    assert "没能对应" in chat.say("zhangsan", "HT2026001")
    chat.say("zhangsan", "合同号 HT2026001")
    assert "方案演示 → 赢单" in chat.say("zhangsan", "签约金额 15万")
    opp = one(chat.rt, Opportunity)
    assert (opp.stage, opp.contract_no, opp.signed_amount) == ("won", "HT2026001", Decimal("150000.00"))
    assert opp.closed_at is not None


def test_another_rep_cannot_see_or_change_the_customer_but_the_manager_can(yunqi: Chat):
    chat = yunqi
    refused = chat.say("lisi", "客户 杭州云栖")
    assert "无权查看或修改" in refused and "15" not in refused
    assert "无权" in chat.say("lisi", "推进 杭州云栖 方案确认")
    assert "无权" in chat.say("lisi", "拜访 杭州云栖 痛点:随便写写看看能不能写 预算:已明确 下一步:无")
    assert one(chat.rt, Opportunity).pending_stage is None
    assert rows(chat.rt, Visit) == []
    profile = chat.say("wangwu", "客户 杭州云栖")
    assert "杭州云栖科技有限公司" in profile and "负责人：张三" in profile and "方案演示" in profile
    assert "杭州云栖科技有限公司" in chat.say("admin", "客户 杭州云栖")


def test_invalid_and_duplicate_credit_codes_are_refused_with_the_reason(yunqi: Chat):
    chat = yunqi
    bad = chat.say("lisi", "新客户 某某科技有限公司 信用代码 91330100716105852G")
    assert "校验位不符" in bad and "「F」" in bad
    dup = chat.say("lisi", f"新客户 云栖科技 信用代码 {CODE}")
    assert "已属于客户「杭州云栖科技有限公司」" in dup and "张三" in dup
    assert len(rows(chat.rt, Customer)) == 1


def test_fuzzy_names_and_a_numbered_choice(chat: Chat, company):
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("zhangsan", "新客户 杭州西湖电子股份有限公司")
    choice = chat.say("zhangsan", "客户 杭州")
    assert "对应 2 个客户" in choice and "1. " in choice and "2. " in choice
    picked = chat.say("zhangsan", "2")
    assert "【杭州西湖电子股份有限公司】" in picked
    assert "【杭州云栖科技有限公司】" in chat.say("zhangsan", "客户 云栖")  # a keyword is enough


def test_template_check_flags_an_image_only_item(chat: Chat, company):
    assert "模板检查通过" in chat.say("admin", "模板 检查")
    reply = chat.say("admin", "必填 方案确认 竞品对比表:图片 预算")
    assert "竞品对比表" in reply
    check = chat.say("admin", "模板 检查")
    assert "1 个问题" in check and "竞品对比表" in check and "图片" in check
    assert "仅限管理员" in chat.say("zhangsan", "模板 检查")


def test_four_of_ten_rejected_submissions_alert_the_admin_with_the_top_missing_item(chat: Chat, rt, company):
    for i in range(10):
        chat.say("zhangsan", f"新客户 客户{i}号有限公司")
    for i in range(6):
        chat.say("zhangsan", f"拜访 客户{i}号 痛点:客户希望统一管理多地门店库存 预算:已明确 下一步:演示")
    for i in range(6, 10):
        chat.say("zhangsan", f"拜访 客户{i}号 痛点:客户希望统一管理多地门店库存 下一步:演示")
        chat.say("zhangsan", "取消")
    assert run_job(rt, load_jobs()["rejection_alert"], "t1") == "1 alerts sent"
    chat.deliver()
    alert = chat.inbox("admin")[-1].body["content"]
    assert "10 次提交中 4 次" in alert and "预算情况（4 次）" in alert and "王五" in alert
    assert run_job(rt, load_jobs()["rejection_alert"], "t2") == "0 alerts sent"  # once a day


def test_upload_page_identifies_the_member_and_attaches_the_file(yunqi: Chat, wecom):
    chat = yunqi
    chat.say("admin", "必填 方案确认 竞品对比表:文件/文字 预算")
    reply = chat.say("zhangsan", "推进 杭州云栖 方案确认")
    url = next(w for w in reply.split() if "/upload/" in w)
    path = url.split("127.0.0.1:8000", 1)[1]
    client = chat.app.test_client()
    first = client.get(path)
    assert first.status_code == 302 and "snsapi_base" in first.headers["Location"]
    intruder = client.get(path, query_string={"code": wecom.issue_oauth_code("lisi")})
    assert intruder.status_code == 403
    page = client.get(path, query_string={"code": wecom.issue_oauth_code("zhangsan")})
    assert page.status_code == 200 and "上传" in page.get_data(as_text=True)
    from io import BytesIO

    done = client.post(path, data={"file": (BytesIO(b"competitor,us,them\n"), "对比.csv")},
                       content_type="multipart/form-data")
    assert done.status_code == 200 and "竞品对比表" in done.get_data(as_text=True)
    att = one(chat.rt, Attachment, Attachment.kind == "file")
    assert att.filename == "对比.csv" and att.tag == "competitor"
    assert "预算情况" not in done.get_data(as_text=True) or one(chat.rt, Opportunity).stage == "demo"
    assert "方案演示 → 方案确认" in chat.say("zhangsan", "已明确")
    assert client.get("/upload/not-a-token").status_code == 404


def test_stage_admin_commands_are_stored_and_audited(chat: Chat, company):
    assert "10 天" in chat.say("zhangsan", "阶段 列表")
    assert "12 天" in chat.say("admin", "时限 方案演示 12")
    assert "方案演示｜时限 12 天" in chat.say("zhangsan", "阶段 列表")
    assert "不认识的必填项「发票」" in chat.say("admin", "必填 方案确认 发票")
    audit = chat.say("admin", "审计 5")
    assert "set_sla" in audit


def test_voice_is_transcribed_when_a_provider_is_configured(make_runtime, wecom, http, company):
    from bot.app import create_app

    rt = make_runtime(integrations__asr__enabled=True, integrations__asr__base_url="https://asr.test/v1/transcribe",
                      integrations__asr__key="k")
    chat = Chat(create_app(runtime=rt), rt, wecom)
    http.add(responses.POST, "https://asr.test/v1/transcribe", json={"text": "客户抱怨现有系统太慢"})
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("zhangsan", "拜访 杭州云栖 预算:已明确 下一步:演示")
    chat.send_media("zhangsan", "voice", VOICE, "v.amr", "audio/amr")
    clip = one(rt, Attachment, Attachment.kind == "voice")
    assert clip.transcript == "客户抱怨现有系统太慢"
    assert http.calls[-1].request.headers["Authorization"] == "Bearer k"
    assert one(rt, Visit).quality


def test_a_failing_speech_provider_still_keeps_the_clip_as_evidence(make_runtime, wecom, http, company):
    from bot.app import create_app

    rt = make_runtime(integrations__asr__enabled=True, integrations__asr__base_url="https://asr.test/v1/transcribe")
    chat = Chat(create_app(runtime=rt), rt, wecom)
    http.add(responses.POST, "https://asr.test/v1/transcribe", status=503)
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("zhangsan", "拜访 杭州云栖 预算:已明确 下一步:演示")
    chat.send_media("zhangsan", "voice", VOICE, "v.amr", "audio/amr")
    clip = one(rt, Attachment, Attachment.kind == "voice")
    assert clip.transcript is None and clip.blob_id is not None
    assert one(rt, Visit).quality


def test_upload_link_inside_a_visit_dialog_attaches_the_file_to_the_visit(yunqi: Chat, wecom):
    chat = yunqi
    chat.say("zhangsan", "拜访 杭州云栖 痛点:需要统一的多仓库存视图 预算:已明确")
    reply = chat.say("zhangsan", "上传")
    path = reply.split("127.0.0.1:8000", 1)[1].split()[0]
    client = chat.app.test_client()
    client.get(path, query_string={"code": wecom.issue_oauth_code("zhangsan")})
    from io import BytesIO

    resp = client.post(path, data={"file": (BytesIO(b"%PDF-1.4 minutes"), "纪要.pdf")},
                       content_type="multipart/form-data")
    assert resp.status_code == 200 and "拜访记录" in resp.get_data(as_text=True)
    visit = one(chat.rt, Visit)
    assert one(chat.rt, Attachment, Attachment.visit_id == visit.id).filename == "纪要.pdf"
    chat.deliver()
    assert any("纪要.pdf" in m.body.get("content", "") for m in chat.inbox("zhangsan"))


def test_a_failed_media_download_is_retried_by_the_media_fetch_job(yunqi: Chat, http, wecom):
    chat = yunqi
    chat.say("zhangsan", "拜访 杭州云栖 痛点:需要统一的多仓库存视图 下一步:演示")
    original = wecom.handle

    def media_down(api, query, body, files=None):
        if api == "media/get":
            return {"errcode": -1, "errmsg": "system busy"}, "application/json"
        return original(api, query, body, files)

    wecom.handle = media_down  # WeCom's media service fails for a while
    chat.send_media("zhangsan", "image", PNG, "site.png", "image/png")
    att = one(chat.rt, Attachment, Attachment.kind == "image")
    assert att.blob_id is None and att.media_id  # kept, not lost
    assert run_job(chat.rt, load_jobs()["media_fetch"], "m1") == "0 fetched, 1 still failing"
    wecom.handle = original
    assert run_job(chat.rt, load_jobs()["media_fetch"], "m2") == "1 fetched, 0 still failing"
    att = one(chat.rt, Attachment, Attachment.kind == "image")
    assert one(chat.rt, Blob, Blob.id == att.blob_id).content == PNG


def test_admin_changes_thresholds_by_chat_and_the_jobs_use_them(chat: Chat, rt, company):
    assert "BBB-" in chat.say("admin", "阈值")
    assert "已将信用阈值设为 A-" in chat.say("admin", "阈值 信用 a-")
    assert "不是有效的拒绝率阈值" in chat.say("admin", "阈值 拒绝率 150%")
    assert "0.5" in chat.say("admin", "阈值 拒绝率 50%")
    from storage.settings import tunable

    with rt.db.sessions() as s:
        assert tunable(s, rt.config, "payments.credit_threshold") == "A-"
        assert tunable(s, rt.config, "alerts.rejection_share") == 0.5
    assert "仅限管理员" in chat.say("zhangsan", "阈值 信用 AAA")
    chat.say("zhangsan", "新客户 杭州云栖科技有限公司")
    chat.say("zhangsan", "新商机 杭州云栖 10万")
    assert "已冻结 1 个" in chat.say("admin", "信用 杭州云栖 BBB")  # BBB is below the raised threshold A-


def test_a_command_inside_a_visit_saves_the_visit_with_what_it_has_then_runs(yunqi: Chat):
    chat = yunqi
    assert "还缺 2 项" in chat.say("zhangsan", "拜访 杭州云栖 预算:待确认")
    # inside the visit, 联系人 is the visit's field, written with a colon or a space: not the contacts command
    noted = chat.say("zhangsan", "联系人 王总 CTO")
    assert noted.startswith("已记下：联系人。\n还缺 2 项")
    reply = chat.say("zhangsan", "推进 杭州云栖 方案确认")
    saved, left, *moved = reply.split("\n")
    assert saved == "已保存拜访「杭州云栖科技有限公司」（未完成：缺少 痛点确认、下一步计划），不计为高质量拜访。"
    assert left == "已结束「拜访记录」。"
    assert "推进到「方案确认」还缺 1 项" in moved[0]  # the command ran
    visit = one(chat.rt, Visit)
    assert (visit.status, visit.quality, visit.budget, visit.contacts_met, visit.pain_point) == (
        "done", False, "待确认", "王总 CTO", None)

    # a visit left before anything was said about it is not kept as an empty record
    chat.say("zhangsan", "拜访 杭州云栖")
    profile = chat.say("zhangsan", "客户 杭州云栖")
    assert profile.startswith("已结束「拜访记录」（空白的拜访草稿未保存）。\n【杭州云栖科技有限公司】")
    assert [v.id for v in rows(chat.rt, Visit)] == [visit.id]


def test_meeting_notes_that_start_like_a_command_are_notes_but_a_command_leaves(yunqi: Chat):
    chat = yunqi
    chat.say("zhangsan", "纪要 杭州云栖")
    saved = chat.say("zhangsan", "客户说预算下周定，王总负责整理需求清单")  # 客户 + text: not the 客户 command
    assert saved.startswith("已保存「杭州云栖科技有限公司」的会议纪要")
    chat.say("zhangsan", "纪要 杭州云栖")
    profile = chat.say("zhangsan", "客户 杭州云栖")
    assert profile.startswith("已结束「会议纪要」（未保存）。\n【杭州云栖科技有限公司】")
    assert [n.text for n in rows(chat.rt, MeetingNote)] == ["客户说预算下周定，王总负责整理需求清单"]


def test_a_visit_told_in_plain_words_finds_the_customer_and_keeps_the_words(yunqi: Chat):
    chat = yunqi
    reply = chat.say("zhangsan", "拜访 杭州云栖 今天见了王总，聊了扩容预算的事情，下周三再约")
    assert reply.startswith("已把您写的这段话记为「痛点确认」。\n已记录拜访「杭州云栖科技有限公司」。还缺 2 项")
    assert "预算情况" in reply and "下一步计划" in reply
    chat.say("zhangsan", "预算:待确认 下一步:下周三再约王总")
    visit = one(chat.rt, Visit)
    assert (visit.pain_point, visit.budget, visit.next_step, visit.quality) == (
        "今天见了王总，聊了扩容预算的事情，下周三再约", "待确认", "下周三再约王总", True)
    # words that fit no missing item are named, not dropped silently (here the next step must be a voice clip,
    # the pain point is ten characters or more); a name that is not a customer's is taken whole
    assert "已设置" in chat.say("admin", "必填 方案确认 下一步计划:语音")
    assert "「嗯」没能对应到拜访的必填项" in chat.say("zhangsan", "拜访 杭州云栖 嗯")
    chat.say("zhangsan", "取消")
    assert chat.say("zhangsan", "拜访 杭州云栖控股 今天见了王总聊了很久的事") == (
        "没有找到客户「杭州云栖控股 今天见了王总聊了很久的事」。可以发送「新客户 杭州云栖控股」建档。")
    assert chat.say("zhangsan", "客户 Acme Trading Ltd").endswith("「新客户 Acme Trading Ltd」建档。")


def test_move_by_the_opportunity_number_and_by_a_numbered_choice_of_customer(yunqi: Chat):
    chat = yunqi
    chat.say("zhangsan", "新商机 杭州云栖 8万 线索 增购")
    chat.say("zhangsan", "新客户 杭州西湖电子股份有限公司")
    chat.say("zhangsan", "新商机 杭州西湖 5万 线索")
    first, second = sorted(o.id for o in rows(chat.rt, Opportunity, Opportunity.customer_id == one(
        chat.rt, Customer, Customer.name == "杭州云栖科技有限公司").id))  # in 方案演示, and the new lead
    assert "有 2 个进行中的商机" in chat.say("zhangsan", "推进 杭州云栖 需求诊断")
    # 商机 #N as the profile shows it: that opportunity, without naming its customer
    assert chat.say("zhangsan", f"推进 #{second} 需求诊断").startswith("推进到「需求诊断」还缺 1 项：① 痛点确认")
    pending = {o.id: o.pending_stage for o in rows(chat.rt, Opportunity)}
    assert pending[second] == "diagnosis" and pending[first] is None
    chat.say("zhangsan", "取消")
    assert chat.say("lisi", f"推进 #{second} 方案确认") == (
        f"没有找到您可以操作的商机 #{second}。发送「客户 <名称>」可以看到客户各商机的编号。")
    assert chat.say("zhangsan", "推进 #999 方案确认").startswith("没有找到您可以操作的商机 #999")
    assert chat.say("zhangsan", f"推进 #{'9' * 30} 方案确认").startswith("没有找到您可以操作的商机 #999")
    # a numbered choice re-runs the command with the customer picked, not an opportunity of that number
    choice = chat.say("zhangsan", "推进 杭州 需求诊断")
    assert "对应 2 个客户" in choice
    n = next(line[0] for line in choice.splitlines() if "杭州西湖" in line)
    assert chat.say("zhangsan", n).startswith("推进到「需求诊断」还缺 1 项")
    xihu = one(chat.rt, Opportunity, Opportunity.amount == Decimal("50000"))
    assert xihu.pending_stage == "diagnosis"


def test_a_new_customer_whose_name_contains_or_is_inside_another_is_created_with_a_warning(yunqi: Chat):
    chat = yunqi
    short = chat.say("lisi", "新客户 杭州云栖")
    assert short == ("已建档：杭州云栖｜区域 华东，负责人 李四。下一步可以发送「新商机 杭州云栖 金额」。\n"
                     "注意：已有名称相近的客户「杭州云栖科技有限公司」（负责人：张三）。如是同一家公司，请管理员用「合并」合为一个。")
    other = chat.say("zhangsan", "新客户 杭州云栖网络有限公司")
    assert "「杭州云栖」（负责人：李四）" in other and "杭州云栖科技有限公司" not in other
    assert "注意" not in chat.say("zhangsan", "新客户 北京远景数据有限公司")
    assert len(rows(chat.rt, Customer)) == 4  # a warning, not a refusal: a short name may be another company


def test_punctuation_right_after_a_command_word_separates_like_a_space(yunqi: Chat):
    for text in ("客户：杭州云栖", "客户:杭州云栖", "客户，杭州云栖"):
        assert yunqi.say("zhangsan", text).startswith("【杭州云栖科技有限公司】"), text
