"""Talk to the bot as WeCom and its members do (Errbot-style): encrypted callbacks in, and what each
member's phone shows out (passive replies plus messages sent through the fake WeCom API)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl, urlparse
from zoneinfo import ZoneInfo

import responses
from flask import Flask

from bot.emulator import wire
from bot.emulator.state import WeComState
from bot.outbox import Deliverer
from bot.runtime import Runtime

API = "https://qyapi.test/cgi-bin/"


def install_fake_wecom(rsps: responses.RequestsMock, state: WeComState, base: str = API) -> None:
    """Route every WeCom API call under ``base`` to ``state`` at the HTTP layer."""

    def callback(request: Any) -> tuple[int, dict[str, str], bytes]:
        url = urlparse(request.url)
        api = url.path.split("/cgi-bin/", 1)[1]
        query = dict(parse_qsl(url.query))
        files: dict[str, tuple[str, bytes, str]] = {}
        body = request.body
        ctype = request.headers.get("Content-Type", "")
        if ctype.startswith("multipart/form-data"):
            files = _parse_multipart(body, ctype)
            body = None
        elif isinstance(body, str):
            body = body.encode()
        result, rtype = state.handle(api, query, body, files)
        if isinstance(result, bytes):
            return 200, {"Content-Type": rtype}, result
        return 200, {"Content-Type": "application/json"}, json.dumps(result).encode()

    rsps.add_callback(responses.GET, re.compile(re.escape(base) + r".*"), callback=callback)
    rsps.add_callback(responses.POST, re.compile(re.escape(base) + r".*"), callback=callback)


def _parse_multipart(body: bytes, ctype: str) -> dict[str, tuple[str, bytes, str]]:
    boundary = ctype.split("boundary=", 1)[1].encode()
    out: dict[str, tuple[str, bytes, str]] = {}
    for part in body.split(b"--" + boundary):
        if b"\r\n\r\n" not in part:
            continue
        head, data = part.split(b"\r\n\r\n", 1)
        name = re.search(rb'name="([^"]+)"', head)
        fname = re.search(rb'filename="([^"]*)"', head)
        pct = re.search(rb"Content-Type: ([^\r\n]+)", head)
        if name:
            out[name.group(1).decode()] = (fname.group(1).decode() if fname else "",
                                           data[:-2] if data.endswith(b"\r\n") else data,
                                           pct.group(1).decode() if pct else "application/octet-stream")
    return out


@dataclass
class Said:
    """What one message to the bot produced for the sender: the passive reply, if any."""

    status: int
    reply: dict[str, str] | None

    @property
    def text(self) -> str:
        return (self.reply or {}).get("Content", "")


@dataclass
class Chat:
    app: Flask
    rt: Runtime
    wecom: WeComState
    seen: dict[str, int] = field(default_factory=dict)

    @property
    def corp(self) -> str:
        return self.rt.config.get("wecom.corp_id")

    @property
    def agent(self) -> int:
        return int(self.rt.config.get("wecom.agent_id"))

    def post_xml(self, plaintext: str, **query: str) -> Any:
        params, body = self.rt.crypto.encrypt_callback(plaintext)
        params.update(query)
        return self.app.test_client().post("/wecom/callback", query_string=params, data=body,
                                           content_type="text/xml")

    def _said(self, resp: Any) -> Said:
        body = resp.get_data(as_text=True)
        reply = wire.read_passive_reply(self.rt.crypto, body) if resp.status_code == 200 else None
        return Said(resp.status_code, reply)

    def send(self, userid: str, text: str, msg_id: str | None = None) -> Said:
        return self._said(self.post_xml(wire.text_xml(self.corp, self.agent, userid, text, msg_id)))

    def say(self, userid: str, text: str) -> str:
        """Send text; return everything the sender sees in reply (passive + delivered), joined."""
        said = self.send(userid, text)
        self.deliver()
        parts = [said.text] if said.text else []
        parts += [self._render(m) for m in self.new_messages(userid)]
        return "\n".join(parts)

    def send_media(self, userid: str, kind: str, data: bytes, filename: str, ctype: str) -> Said:
        media_id = self.wecom.add_media(filename, data, ctype)
        fields = {"MediaId": media_id}
        if kind == "voice":
            fields["Format"] = "amr"
        if kind == "image":
            fields["PicUrl"] = "https://wework.qpic.cn/fake.jpg"
        return self._said(self.post_xml(wire.message_xml(self.corp, self.agent, userid, kind, fields)))

    def click(self, userid: str, task_id: str, key: str, selected: dict[str, list[str]] | None = None,
              card_type: str = "button_interaction") -> Said:
        code = self.wecom.new_click_code(userid, task_id)
        xml = wire.card_click_xml(self.corp, self.agent, userid, task_id, key, card_type, code, selected)
        said = self._said(self.post_xml(xml))
        if said.reply and said.reply.get("MsgType") == "update_button":
            self.wecom.apply_passive_update(userid, task_id, said.reply["ReplaceName"])
        return said

    def flush_clicks(self) -> int:
        """Push the tracked-link clicks this app has buffered to Redis now (its flusher does that every
        ``links.click_flush_ms``), so a drain that follows finds them."""
        return int(self.app.extensions["salesbot.links"].flush())

    def deliver(self) -> int:
        """Run outbox delivery until nothing is due."""
        total = 0
        d = Deliverer(self.rt, owner="test-worker")
        while True:
            n = d.run_once()
            total += n
            if n == 0:
                return total

    def inbox(self, userid: str) -> list[Any]:
        return self.wecom.inbox(userid)

    def new_messages(self, userid: str) -> list[Any]:
        msgs = self.inbox(userid)
        start = self.seen.get(userid, 0)
        self.seen[userid] = len(msgs)
        return msgs[start:]

    def cards(self, userid: str) -> list[Any]:
        return [m for m in self.inbox(userid) if m.msgtype == "template_card"]

    @staticmethod
    def _render(m: Any) -> str:
        if m.msgtype in ("text", "markdown"):
            return str(m.body["content"])
        if m.msgtype == "template_card":
            return f"[卡片] {m.body.get('main_title', {}).get('title', '')}"
        return f"[{m.msgtype}]"


class Clock:
    """Freezes 'today' for the bot (Runtime.now) and the jobs (datetime.now in their modules)."""

    def __init__(self, monkeypatch: Any, rt: Any) -> None:
        self.mp, self.rt = monkeypatch, rt

    def set(self, day: str) -> None:
        when = datetime.fromisoformat(day + "T09:00:00").replace(tzinfo=ZoneInfo("Asia/Shanghai"))

        class Frozen(datetime):
            @classmethod
            def now(cls, tz=None):  # noqa: ANN001
                return when if tz is None else when.astimezone(tz)

        self.mp.setattr(self.rt, "now", lambda: when)
        import jobs.collection_reminders
        import jobs.forecast_snapshot
        import jobs.incentives
        import jobs.note_reminders

        for module in (jobs.collection_reminders, jobs.forecast_snapshot, jobs.incentives, jobs.note_reminders):
            self.mp.setattr(module, "datetime", Frozen)
