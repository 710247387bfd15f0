"""Multi-turn dialogs declared as states, persisted in Redis with a TTL.

A dialog is data: a name, a first state, and for each state a step function. The state (name, state,
collected values) is stored per member in Redis, so another worker, or this one after a restart,
continues the conversation. ``取消`` leaves any dialog. So does a command written out in full (its keyword
alone or followed by a space; who may use it is checked as usual): the dialog's ``on_leave`` settles what it holds
(e.g. a visit is saved with what it has), and the command runs; a dialog lists in ``answers`` the keywords
that are answers inside it (the visit's ``联系人 王总``), not commands.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from bot import messages as M
from bot.context import Ctx

END = "__end__"
KEEP = "__keep__"  # the step already ended this dialog or started another: store nothing
# A step reads the member's message, may reply, and returns the next state (END to finish).
Step = Callable[[Ctx, dict[str, Any]], str]


@dataclass(frozen=True)
class Dialog:
    name: str
    title: str
    first: str
    states: dict[str, Step]
    timeout_s: int = 1800
    on_cancel: Callable[[Ctx, dict[str, Any]], None] | None = None  # undo what the dialog wrote so far
    # a command left the dialog: settle what it holds, say what became of it (", 拜访已保存")
    on_leave: Callable[[Ctx, dict[str, Any]], str] | None = None
    answers: tuple[str, ...] = ()  # commands (by a keyword of theirs) that are answers inside this dialog


DIALOGS: dict[str, Dialog] = {}


def dialog(d: Dialog) -> Dialog:
    DIALOGS[d.name] = d
    return d


@dataclass
class Active:
    name: str
    state: str
    data: dict[str, Any]

    @property
    def dialog(self) -> Dialog | None:
        return DIALOGS.get(self.name)


class DialogStore:
    def __init__(self, r: redis.Redis) -> None:
        self.r = r

    @staticmethod
    def key(userid: str) -> str:
        return f"dialog:{userid}"

    def get(self, userid: str) -> Active | None:
        return self.parse(self.r.get(self.key(userid)))

    @staticmethod
    def parse(raw: bytes | str | None) -> Active | None:
        """The dialog stored as ``raw`` (what GET of ``key(userid)`` returned)."""
        if not raw:
            return None
        data = json.loads(raw)
        return Active(data["name"], data["state"], data["data"])

    def save(self, userid: str, active: Active) -> None:
        d = DIALOGS[active.name]
        self.r.set(self.key(userid), json.dumps({"name": active.name, "state": active.state,
                                                  "data": active.data}, ensure_ascii=False, default=str),
                   ex=d.timeout_s)

    def clear(self, userid: str) -> None:
        self.r.delete(self.key(userid))


def start(ctx: Ctx, name: str, data: dict[str, Any] | None = None, state: str | None = None) -> None:
    """Begin dialog ``name`` for the asker; the caller replies with the first question."""
    d = DIALOGS[name]
    DialogStore(ctx.rt.redis).save(ctx.userid, Active(name, state or d.first, data or {}))


def advance(ctx: Ctx, active: Active) -> None:
    """Feed the asker's message to the current state's step and persist where it leads."""
    d = active.dialog
    store = DialogStore(ctx.rt.redis)
    if d is None or active.state not in d.states:
        store.clear(ctx.userid)
        return
    nxt = d.states[active.state](ctx, active.data)
    if nxt == KEEP:
        return
    if nxt == END:
        store.clear(ctx.userid)
    else:
        store.save(ctx.userid, Active(active.name, nxt, active.data))


def leave(ctx: Ctx, active: Active) -> str:
    """End the asker's dialog because a command came instead of an answer; what its ``on_leave`` says."""
    DialogStore(ctx.rt.redis).clear(ctx.userid)
    d = active.dialog
    return d.on_leave(ctx, active.data) if d is not None and d.on_leave is not None else M.DIALOG_LEFT_UNSAVED
