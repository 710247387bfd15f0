"""The emulator console in a real browser (Playwright driving Debian's Chromium, headless): a rep asks
for help, the admin sets the rep's manager, the manager confirms on the card and sees it update;
markdown and every template-card type render, and their checkboxes and selects submit.

Runs in CI (``.ci/run`` installs the ``chromium`` package). Locally it can be skipped only explicitly,
with SALESBOT_SKIP_BROWSER_TEST=1."""

from __future__ import annotations

import os
import struct
import uuid
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from bot.demo import Demo

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TIMEOUT_MS = 15000

pytestmark = pytest.mark.skipif(os.environ.get("SALESBOT_SKIP_BROWSER_TEST") == "1",
                                reason="SALESBOT_SKIP_BROWSER_TEST=1")


def tiny_png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\0" + b"\x1e\x6f\xff" * 4 for _ in range(4))  # 4×4 blue
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 4, 4, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    d = Demo(tmp_path / "data", port=0, redis_name=f"browser-{uuid.uuid4().hex}")
    d.start()
    yield d
    d.stop()


@pytest.fixture
def page(demo: Demo) -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (or set SALESBOT_SKIP_BROWSER_TEST=1)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 900})
        pg = context.new_page()
        pg.set_default_timeout(TIMEOUT_MS)
        errors: list[str] = []
        pg.on("pageerror", lambda exc: errors.append(str(exc)))
        pg.goto(demo.console_url)
        yield pg
        assert not errors, f"JavaScript errors on the console: {errors}"
        browser.close()


def chat_as(page: Any, userid: str) -> None:
    page.click(f'#member-list [data-userid="{userid}"]')
    from playwright.sync_api import expect

    expect(page.locator("#chat-head")).to_contain_text(f"（{userid}）")


def say(page: Any, text: str) -> None:
    page.fill("#input", text)
    page.press("#input", "Enter")


def test_rep_help_then_manager_confirms_the_team_card(page: Any) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#conn")).to_have_text("已连接")
    for userid in ("chenjing", "wanglei", "liuyang", "zhangmin", "lihao", "sunli", "zhouting", "wuqiang"):
        expect(page.locator(f'#member-list [data-userid="{userid}"]')).to_be_visible()

    # a rep asks for help and sees the rep's commands, not the admin's
    chat_as(page, "liuyang")
    say(page, "帮助")
    mine = page.locator("#messages .msg.mine").last
    expect(mine).to_contain_text("帮助")
    answer = page.locator("#messages .msg.bot").last
    expect(answer).to_contain_text("您（刘洋，销售代表）可以使用的命令")
    expect(answer).to_contain_text("查看可用命令：帮助")
    expect(answer).not_to_contain_text("角色 zhangsan")
    expect(answer).to_contain_text("被动回复")

    # the wire panel shows the callback decrypted, both ways
    first = page.locator("#wire li.cb").last
    first.locator("summary").click()
    expect(first).to_contain_text("<Content><![CDATA[帮助]]></Content>")
    expect(first).to_contain_text("<MsgType><![CDATA[text]]></MsgType>")
    expect(first).to_contain_text("HTTP 200")

    # the admin sets the rep's manager; the manager's card arrives without a reload
    chat_as(page, "chenjing")
    say(page, "主管 liuyang wanglei")
    expect(page.locator("#messages .msg.bot").last).to_contain_text("已将 刘洋 的主管设为 王磊")
    expect(page.locator('#member-list [data-userid="wanglei"] .badge')).to_have_text("1")

    chat_as(page, "wanglei")
    card = page.locator("#messages .card").filter(has_text="团队成员确认").last
    expect(card).to_contain_text("管理员将 刘洋 设为您的下属")
    expect(card.locator("button", has_text="不是我的下属")).to_be_visible()
    card.locator("button", has_text="确认").click()
    updated = page.locator("#messages .card").filter(has_text="团队成员确认").last
    expect(updated.locator("button.replaced")).to_have_text("已确认")
    expect(updated.locator("button", has_text="不是我的下属")).to_have_count(0)
    expect(page.locator("#wire li.cb").first).to_contain_text("wanglei 点击卡片 confirm")


def test_media_markdown_and_every_card_type_render_and_submit(page: Any, demo: Demo) -> None:
    from playwright.sync_api import expect

    chat_as(page, "zhangmin")
    # an image from the file picker: stored as WeCom media, shown from media/get bytes
    page.set_input_files("#pick-image", files=[{"name": "拜访.png", "mimeType": "image/png", "buffer": tiny_png()}])
    img = page.locator("#messages .msg.mine img.pic").last
    expect(img).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth === 4", arg=img.element_handle())
    expect(page.locator("#wire li.cb").first).to_contain_text("zhangmin: [image]")

    # a voice clip (any small file) and a link
    page.set_input_files("#pick-voice", files=[{"name": "语音.amr", "mimeType": "audio/amr",
                                                "buffer": b"#!AMR\n" + b"\0" * 64}])
    expect(page.locator("#messages .msg.mine").last).to_contain_text("[语音] 语音.amr")
    page.click("#btn-link")
    page.fill("#link-title", "竞品对比")
    page.fill("#link-url", "https://example.com/compare")
    page.click("#btn-link-send")
    expect(page.locator("#messages .msg.mine").last).to_contain_text("竞品对比")

    # pushes through the fake API as the bot would send them: markdown and the five card types
    cfg = demo.runtime.config
    api = demo.base_url + "/dev/wecom/cgi-bin/"
    token = requests.get(api + "gettoken", params={"corpid": cfg.get("wecom.corp_id"),
                                                   "corpsecret": cfg.get("wecom.secret")}, timeout=5).json()
    at = {"access_token": token["access_token"]}

    def push(msgtype: str, body: dict[str, Any]) -> None:
        r = requests.post(api + "message/send", params=at, timeout=5, json={
            "touser": "zhangmin", "msgtype": msgtype, "agentid": cfg.get("wecom.agent_id"), msgtype: body})
        assert r.json()["errcode"] == 0, r.json()

    push("markdown", {"content": "## 本周回款\n**合计** ¥1,200,000\n> 逾期 <font color=\"warning\">2 笔</font>\n"
                                 "<font color=\"info\">已到账</font> <font color=\"comment\">备注</font>\n"
                                 "[查看明细](https://example.com/pay)"})
    md = page.locator("#messages .msg.bot .md").last
    expect(md.locator("h2")).to_have_text("本周回款")
    expect(md.locator("strong")).to_have_text("合计")
    expect(md.locator("blockquote .font-warning")).to_have_text("2 笔")
    expect(md.locator(".font-info")).to_have_text("已到账")
    expect(md.locator(".font-comment")).to_have_text("备注")
    expect(md.locator("a")).to_have_attribute("href", "https://example.com/pay")

    push("template_card", {"card_type": "text_notice", "main_title": {"title": "合同到期提醒", "desc": "还有 30 天"},
                           "emphasis_content": {"title": "¥ 360,000", "desc": "待续约金额"},
                           "card_action": {"type": 1, "url": "https://example.com/c/1"}})
    push("template_card", {"card_type": "news_notice", "main_title": {"title": "新版报价单"},
                           "card_image": {"url": "https://example.com/x.png", "aspect_ratio": 1.3},
                           "card_action": {"type": 1, "url": "https://example.com/q"}})
    push("template_card", {"card_type": "vote_interaction", "task_id": "vote-1", "main_title": {"title": "选择拜访目的"},
                           "checkbox": {"question_key": "purpose", "mode": 1, "option_list": [
                               {"id": "demo", "text": "产品演示"}, {"id": "price", "text": "商务谈判"},
                               {"id": "renew", "text": "续约"}]},
                           "submit_button": {"text": "提交", "key": "vote_submit"}})
    push("template_card", {"card_type": "multiple_interaction", "task_id": "multi-1",
                           "main_title": {"title": "登记回款"},
                           "select_list": [{"question_key": "bank", "title": "银行", "option_list": [
                               {"id": "icbc", "text": "工商银行"}, {"id": "cmb", "text": "招商银行"}]},
                               {"question_key": "kind", "title": "类型", "option_list": [
                                   {"id": "first", "text": "首付款"}, {"id": "final", "text": "尾款"}]}],
                           "submit_button": {"text": "确定", "key": "multi_submit"}})

    cards = page.locator("#messages .card")
    expect(cards.filter(has_text="合同到期提醒").locator(".emphasis")).to_contain_text("¥ 360,000")
    expect(cards.filter(has_text="新版报价单").locator("img.image")).to_have_count(1)
    vote = cards.filter(has_text="选择拜访目的")
    expect(vote.locator("input[type=checkbox]")).to_have_count(3)
    vote.locator("label", has_text="产品演示").locator("input").check()
    vote.locator("label", has_text="续约").locator("input").check()
    vote.locator("button", has_text="提交").click()
    click_wire = page.locator("#wire li.cb").filter(has_text="zhangmin 点击卡片 vote_submit")
    expect(click_wire).to_have_count(1)
    click_wire.locator("summary").click()
    expect(click_wire).to_contain_text("<QuestionKey><![CDATA[purpose]]></QuestionKey>")
    expect(click_wire).to_contain_text("<OptionId><![CDATA[demo]]></OptionId><OptionId><![CDATA[renew]]></OptionId>")
    expect(page.locator("#messages .system").filter(has_text="产品演示、续约")).to_have_count(1)

    multi = cards.filter(has_text="登记回款")
    expect(multi.locator("select")).to_have_count(2)
    multi.locator('select[data-question="bank"]').select_option("cmb")
    multi.locator('select[data-question="kind"]').select_option("final")
    multi.locator("button", has_text="确定").click()
    multi_wire = page.locator("#wire li.cb").filter(has_text="zhangmin 点击卡片 multi_submit")
    expect(multi_wire).to_have_count(1)
    multi_wire.locator("summary").click()
    expect(multi_wire).to_contain_text("<OptionId><![CDATA[cmb]]></OptionId>")
    expect(multi_wire).to_contain_text("<OptionId><![CDATA[final]]></OptionId>")

    # a card's link opens in the customer view
    cards.filter(has_text="合同到期提醒").locator(".action").click()
    expect(page.locator("#tab-customer")).to_be_visible()
    expect(page.locator("#customer-url")).to_have_value("https://example.com/c/1")
