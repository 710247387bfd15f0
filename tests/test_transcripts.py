"""Conversations recorded in the emulator console replay as regression tests: every file under
tests/transcripts/ is replayed against a fresh app, and a changed reply fails the suite.

After a deliberate change of a reply, re-record with
``python -m bot.emulator.transcript --update tests/transcripts/NAME.json`` and review the diff."""

from __future__ import annotations

import copy
import io
import json
from pathlib import Path
from typing import Any

import pytest

from bot.app import create_app
from bot.emulator.live import LiveServer
from bot.emulator.seed import seed_demo
from bot.emulator.transcript import compare, load, normalise_text, replay
from bot.outbox import Deliverer

TRANSCRIPTS = sorted((Path(__file__).parent / "transcripts").glob("*.json"))


def test_there_are_transcripts_to_replay() -> None:
    assert len(TRANSCRIPTS) >= 3


@pytest.mark.parametrize("path", TRANSCRIPTS, ids=lambda p: p.stem)
def test_transcript_replays_unchanged(path: Path, db_url: str, redis_url: str, embedded_name: str) -> None:
    result = replay(load(path), database_url=db_url, redis_url=redis_url, embedded_name=embedded_name)
    assert result.ok, (f"{path.name} no longer matches what the bot says:\n" + "\n".join(result.differences) +
                       f"\nIf the change is intended: python -m bot.emulator.transcript --update {path}")


def test_a_changed_reply_is_reported(db_url: str, redis_url: str, embedded_name: str) -> None:
    """Mutate what the manager is expected to see; the replayer must name the step and the member."""
    expected = load(Path(__file__).parent / "transcripts" / "admin_team.json")
    mutated = copy.deepcopy(expected)
    mutated["steps"][2]["received"]["wanglei"][0]["replace_name"] = "已批准"
    mutated["steps"][0]["received"]["chenjing"][0]["content"] = "已将 李浩 的角色设为：财务。"
    result = replay(mutated, database_url=db_url, redis_url=redis_url, embedded_name=embedded_name)
    assert not result.ok
    assert len(result.differences) == 2
    first, third = result.differences
    assert first.startswith("step 1 (chenjing 发送 text 角色 lihao 销售代表): chenjing received something else")
    assert "-" + json.dumps({"content": "已将 李浩 的角色设为：财务。", "msgtype": "text"}, ensure_ascii=False) in first
    assert "+" + json.dumps({"content": "已将 李浩 的角色设为：销售代表。", "msgtype": "text"},
                            ensure_ascii=False) in first
    assert third.startswith("step 3 (wanglei 点击「团队成员确认」的 confirm): wanglei received something else")
    assert "已批准" in third and "已确认" in third


def test_a_missing_card_button_and_an_extra_step_are_reported() -> None:
    expected = load(Path(__file__).parent / "transcripts" / "admin_team.json")
    actual = copy.deepcopy(expected)
    actual["steps"][1]["received"]["wanglei"][0]["buttons"] = ["确认"]
    actual["steps"].append({"as": "wanglei", "send": {"type": "text", "content": "帮助"}, "received": {}})
    problems = compare(expected, actual)
    assert problems[0] == "step count: expected 3, got 4"
    assert "step 2" in problems[1] and "wanglei" in problems[1]


def test_volatile_bits_are_normalised() -> None:
    assert normalise_text("任务 team_confirm-0123456789abcdef01234567 于 11-28 09:15 处理") == \
        "任务 <task_id> 于 <时间> 处理"
    assert normalise_text("入职 2026-08-15，截止 2026年9月1日 18:00") == "入职 <日期>，截止 <日期> <时间>"
    assert normalise_text("金额 15万，比例 3:2，阶段 2/6") == "金额 15万，比例 3:2，阶段 2/6"


def test_what_the_console_exports_replays(make_runtime: Any) -> None:
    """Chat in the console (as its page does, through /dev/api/…), export, replay: no differences."""
    server = LiveServer()
    rt = make_runtime(dev__emulator=True, wecom__api_base_url=server.url + "/dev/wecom/cgi-bin/",
                      roles__admins=["chenjing"])
    with rt.db.transaction() as s:
        seed_demo(s)
    app = create_app(runtime=rt)
    server.set_app(app)
    server.start()
    c = app.test_client()
    deliverer = Deliverer(rt, owner="test")
    try:
        def say(userid: str, text: str) -> dict[str, Any]:
            r = c.post("/dev/api/send", json={"as": userid, "type": "text", "content": text}).get_json()
            while deliverer.run_once():
                pass
            return r  # type: ignore[no-any-return]

        say("liuyang", "随便说说")  # before the recording starts: not exported
        assert c.post("/dev/api/transcript/reset").status_code == 200
        assert say("chenjing", "主管 zhangmin wanglei")["status"] == 200
        card = [m for m in c.get("/dev/api/inbox?user=wanglei").get_json()["messages"]
                if m["msgtype"] == "template_card"][-1]
        assert c.post("/dev/api/click", json={"as": "wanglei", "seq": card["seq"], "key": "reject"}).status_code == 200
        while deliverer.run_once():
            pass
        png = b"\x89PNG\r\n\x1a\n" + b"\0" * 40
        sent = c.post("/dev/api/send", data={"as": "zhangmin", "type": "image",
                                             "file": (io.BytesIO(png), "拜访照片.png", "image/png")},
                      content_type="multipart/form-data")
        assert sent.get_json()["status"] == 200
        exported = c.get("/dev/api/transcript")
        assert exported.headers["Content-Disposition"].startswith("attachment;")
        transcript = json.loads(exported.data)
    finally:
        server.stop()
    steps = transcript["steps"]
    assert [s["as"] for s in steps] == ["chenjing", "wanglei", "zhangmin"]
    assert steps[1]["click"] == {"card": "团队成员确认", "nth": 0, "key": "reject"}
    assert steps[1]["received"]["chenjing"][0]["content"].startswith("王磊 表示 张敏 不是其下属")
    assert steps[2]["send"]["type"] == "image" and steps[2]["send"]["filename"] == "拜访照片.png"
    result = replay(transcript)
    assert result.ok, "\n".join(result.differences)
