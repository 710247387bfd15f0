"""Transcripts: a conversation recorded in the emulator, saved as JSON and replayed as a regression test.

A transcript is a list of steps. Each step is one member's action — ``send`` (text, image, voice,
video, link, location) or ``click`` (a button of a card, found by the card's title, never by its
task id) — and what every member received because of it: passive replies, pushes through
message/send and card updates, as the phone shows them. Volatile bits (task ids, media ids, dates,
clock times) are normalised so a replay on another day compares equal.

``replay`` runs the steps against a fresh app (fresh database, the demo company) with the emulator
serving the fake API over real HTTP, delivers the outbox after every step, records what arrives and
reports every difference. ``python -m bot.emulator.transcript FILE…`` does that from a shell.
"""

from __future__ import annotations

import base64
import difflib
import json
import re
import sys
import tempfile
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.emulator.hub import Emulator

FORMAT = "salesbot-transcript/1"

# order matters: longer, more specific patterns first
_VOLATILE: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?<![A-Za-z0-9_])[A-Za-z0-9_]{1,40}-[0-9a-f]{24}(?![A-Za-z0-9])"), "<task_id>"),
    (re.compile(r"(?<![A-Za-z0-9])[0-9a-f]{16,}(?![A-Za-z0-9])"), "<id>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2})?"), "<时间>"),
    (re.compile(r"\d{4}-\d{1,2}-\d{1,2}"), "<日期>"),
    (re.compile(r"\d{4}年\d{1,2}月\d{1,2}日"), "<日期>"),
    (re.compile(r"(?<!\d)\d{2}-\d{2} \d{2}:\d{2}(?!\d)"), "<时间>"),
    (re.compile(r"(?<![\d.])\d{1,2}:\d{2}(:\d{2})?(?![\d])"), "<时间>"),
]


def normalise_text(text: str) -> str:
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return text


def normalise(value: Any) -> Any:
    if isinstance(value, str):
        return normalise_text(value)
    if isinstance(value, list):
        return [normalise(v) for v in value]
    if isinstance(value, dict):
        return {k: normalise(v) for k, v in value.items()}
    return value


# ---- what a member sees ----------------------------------------------------------------------------

def card_summary(body: dict[str, Any]) -> dict[str, Any]:
    """A template card as the member sees it: type, title, text, rows, buttons, options."""
    main = body.get("main_title") or {}
    out: dict[str, Any] = {"card_type": body.get("card_type", ""), "title": main.get("title", "")}
    if main.get("desc"):
        out["desc"] = main["desc"]
    emphasis = body.get("emphasis_content") or {}
    if emphasis:
        out["emphasis"] = " ".join(str(emphasis.get(k, "")) for k in ("title", "desc")).strip()
    if body.get("sub_title_text"):
        out["sub_title"] = body["sub_title_text"]
    quote = body.get("quote_area") or {}
    if quote.get("quote_text") or quote.get("title"):
        out["quote"] = quote.get("quote_text") or quote.get("title")
    rows = [f"{r.get('keyname', '')}: {r.get('value', '')}" for r in body.get("horizontal_content_list") or []]
    if rows:
        out["rows"] = rows
    if body.get("button_list"):
        out["buttons"] = [str(b.get("text", "")) for b in body["button_list"]]
    if body.get("checkbox"):
        out["options"] = [str(o.get("text", "")) for o in body["checkbox"].get("option_list") or []]
    if body.get("select_list"):
        out["selects"] = {str(s.get("title", s.get("question_key", ""))): [str(o.get("text", "")) for o in
                                                                           s.get("option_list") or []]
                          for s in body["select_list"]}
    if body.get("submit_button"):
        out["submit"] = body["submit_button"].get("text", "")
    return out


def received_item(msgtype: str, body: dict[str, Any], via: str) -> dict[str, Any]:
    """One received message in a transcript; ``via`` (reply / push / update) is not compared."""
    if msgtype in ("text", "markdown"):
        return {"via": via, "msgtype": msgtype, "content": normalise_text(str(body.get("content", "")))}
    if msgtype == "template_card":
        return {"via": via, "msgtype": msgtype, **normalise(card_summary(body))}
    if msgtype == "textcard":
        return {"via": via, "msgtype": msgtype, "title": body.get("title", ""),
                "description": normalise_text(str(body.get("description", "")))}
    return {"via": via, "msgtype": msgtype}


# ---- recording -------------------------------------------------------------------------------------

class Recorder:
    """Collects the steps of the conversation going on in the emulator (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.steps: list[dict[str, Any]] = []
        self._cards: dict[tuple[str, str], list[str]] = {}  # (userid, title) → task ids, in order

    def reset(self) -> None:
        with self._lock:
            self.steps = []
            self._cards = {}

    def step(self, userid: str, action: dict[str, Any]) -> dict[str, Any]:
        step = {"as": userid, **action, "received": {}}
        with self._lock:
            self.steps.append(step)
        return step

    def drop(self, step: dict[str, Any]) -> None:
        with self._lock:
            self.steps = [s for s in self.steps if s is not step]

    def received(self, userid: str, item: dict[str, Any], step: dict[str, Any] | None = None) -> None:
        """Attach to ``step``, else to the latest step (pushes arrive after what caused them)."""
        with self._lock:
            if step is None:
                if not self.steps:
                    return
                step = self.steps[-1]
            items = step["received"].setdefault(userid, [])
            if item.get("via") == "reply":  # the passive reply is shown before any push it races with
                at = next((i for i, x in enumerate(items) if x.get("via") != "reply"), len(items))
                items.insert(at, item)
            else:
                items.append(item)

    def card_delivered(self, userid: str, task_id: str, title: str) -> None:
        with self._lock:
            self._cards.setdefault((userid, title), []).append(task_id)

    def card_ref(self, userid: str, task_id: str, title: str) -> dict[str, Any]:
        with self._lock:
            ids = self._cards.get((userid, title), [])
        return {"card": title, "nth": ids.index(task_id) if task_id in ids else -1}

    def card_task(self, userid: str, title: str, nth: int) -> str | None:
        with self._lock:
            ids = self._cards.get((userid, title), [])
        if nth >= 0:
            return ids[nth] if nth < len(ids) else None
        return None

    def export(self, title: str = "") -> dict[str, Any]:
        with self._lock:
            steps = json.loads(json.dumps(self.steps, ensure_ascii=False))
        return {"format": FORMAT, "title": title, "seed": "demo", "steps": steps}


# ---- comparing -------------------------------------------------------------------------------------

def _comparable(items: list[dict[str, Any]]) -> list[str]:
    return [json.dumps(normalise({k: v for k, v in item.items() if k != "via"}), ensure_ascii=False,
                       sort_keys=True) for item in items]


def _describe(step: dict[str, Any]) -> str:
    if "click" in step:
        c = step["click"]
        return f"{step['as']} 点击「{c.get('card', '')}」的 {c.get('key', '')}"
    send = step.get("send", {})
    what = send.get("content") or send.get("title") or send.get("filename") or ""
    return f"{step['as']} 发送 {send.get('type', '?')} {what}".strip()


def compare(expected: dict[str, Any], actual: dict[str, Any]) -> list[str]:
    """Human-readable differences between two transcripts' received messages (empty: equal)."""
    problems: list[str] = []
    exp_steps, act_steps = expected.get("steps", []), actual.get("steps", [])
    if len(exp_steps) != len(act_steps):
        problems.append(f"step count: expected {len(exp_steps)}, got {len(act_steps)}")
    for i, (exp, act) in enumerate(zip(exp_steps, act_steps, strict=False), start=1):
        where = f"step {i} ({_describe(exp)})"
        if {k: v for k, v in exp.items() if k != "received"} != {k: v for k, v in act.items() if k != "received"}:
            problems.append(f"{where}: action differs: {_describe(act)}")
        members = sorted(set(exp.get("received", {})) | set(act.get("received", {})))
        for userid in members:
            e = _comparable(exp.get("received", {}).get(userid, []))
            a = _comparable(act.get("received", {}).get(userid, []))
            if e != a:
                diff = "\n".join(difflib.unified_diff(e, a, "expected", "actual", lineterm="", n=1))
                problems.append(f"{where}: {userid} received something else:\n{diff}")
    return problems


# ---- replaying -------------------------------------------------------------------------------------

@dataclass
class ReplayResult:
    actual: dict[str, Any]
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.differences


def load(path: str | Path) -> dict[str, Any]:
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if data.get("format") != FORMAT:
        raise ValueError(f"{path}: not a {FORMAT} file")
    return data  # type: ignore[no-any-return]


def dump(transcript: dict[str, Any]) -> str:
    return json.dumps(transcript, ensure_ascii=False, indent=2) + "\n"


_FILLER = {"image": ("image.png", "image/png"), "voice": ("voice.amr", "audio/amr"),
           "video": ("video.mp4", "video/mp4")}


def run_step(emu: Emulator, step: dict[str, Any]) -> None:
    userid = step["as"]
    if "click" in step:
        c = step["click"]
        card = emu.find_card(userid, c.get("card", ""), int(c.get("nth", -1)))
        if card is None:
            emu.recorder.step(userid, {"click": dict(c), "missing": f"no card titled {c.get('card')!r}"})
            return
        emu.click(userid, card.seq, c.get("key", ""), c.get("selected"))
        return
    send = step.get("send", {})
    kind = send.get("type", "text")
    if kind == "text":
        emu.send_text(userid, send.get("content", ""))
    elif kind in _FILLER:
        filename, ctype = _FILLER[kind]
        data = base64.b64decode(send["data_b64"]) if send.get("data_b64") else b"\0" * int(send.get("size", 64))
        emu.send_media(userid, kind, data, send.get("filename") or filename, send.get("content_type") or ctype)
    elif kind == "link":
        emu.send_message(userid, "link", {"Title": send.get("title", ""), "Description": send.get("description", ""),
                                          "Url": send.get("url", ""), "PicUrl": send.get("pic_url", "")})
    elif kind == "location":
        emu.send_message(userid, "location", {"Location_X": str(send.get("x", "")),
                                              "Location_Y": str(send.get("y", "")), "Scale": "15",
                                              "Label": send.get("label", ""), "AppType": "wxwork"})
    elif kind == "event":
        from bot.emulator import wire

        emu.ensure_member(userid)
        emu.post_callback(wire.event_xml(emu.corp_id, emu.agent_id, userid, send.get("event", "enter_agent"),
                                         send.get("key") or ""))
    else:
        raise ValueError(f"unknown step type {kind!r}")


def replay(transcript: dict[str, Any], *, database_url: str | None = None, redis_url: str = "",
           embedded_name: str | None = None) -> ReplayResult:
    """Replay against a fresh app seeded with the demo company; ``database_url`` must be migrated and empty."""
    from bot.app import create_app
    from bot.demo import DemoCredentials, demo_config
    from bot.emulator.live import LiveServer
    from bot.emulator.seed import seed_demo
    from bot.outbox import Deliverer
    from bot.runtime import build_runtime
    from storage.migrate import upgrade

    with tempfile.TemporaryDirectory(prefix="salesbot-replay-") as tmp:
        server = LiveServer()
        if database_url is None:
            database_url = f"sqlite:///{Path(tmp) / 'replay.db'}"
            upgrade(database_url)
        cfg = demo_config(DemoCredentials.generate(), server.url, database_url, redis_url)
        rt = build_runtime(cfg, embedded_redis_name=embedded_name or f"replay-{uuid.uuid4().hex}")
        try:
            with rt.db.transaction() as s:
                seed_demo(s)
            app = create_app(runtime=rt)
            emu: Emulator = app.extensions["salesbot.emulator"]
            server.set_app(app)
            server.start()
            deliverer = Deliverer(rt, owner="replay")
            for step in transcript.get("steps", []):
                run_step(emu, step)
                while deliverer.run_once():
                    pass
            actual = emu.recorder.export(transcript.get("title", ""))
        finally:
            server.stop()
            rt.db.dispose()
    return ReplayResult(actual, compare(transcript, actual))


def main(argv: list[str] | None = None) -> int:
    """Replay transcript files and print the differences (exit 1 when any differ).

    ``--update`` rewrites each file's expectations with what the bot does now (after a deliberate
    change of a reply; review the diff before committing).
    """
    args = sys.argv[1:] if argv is None else list(argv)
    update = "--update" in args
    paths = [a for a in args if a != "--update"]
    if not paths:
        print("usage: python -m bot.emulator.transcript [--update] FILE.json …", file=sys.stderr)
        return 2
    from bot.app import load_handlers

    load_handlers()
    failed = 0
    for path in paths:
        expected = load(path)
        result = replay(expected)
        if update:
            Path(path).write_text(dump(result.actual), encoding="utf-8")
            print(f"{'updated' if result.differences else 'same   '} {path}")
        elif result.ok:
            print(f"ok      {path}")
        else:
            failed += 1
            print(f"CHANGED {path}")
            for problem in result.differences:
                print("  " + problem.replace("\n", "\n  "))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
