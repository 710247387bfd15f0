"""The command table: keywords → handler, who may use it, one example each.

Handler modules register commands with ``@command``; ``match`` finds the command a text starts with
(longest keyword wins), ``allowed`` lists what a set of roles may use (what 帮助 shows).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

from bot.context import Ctx

Handler = Callable[[Ctx, str], None]


@dataclass(frozen=True)
class Command:
    name: str
    keywords: tuple[str, ...]
    handler: Handler
    roles: frozenset[str] | None  # None: anyone, even a member without a role
    example: str
    summary: str
    # what 帮助 shows a member who is not an admin, when the admin's example would be refused them
    for_others: tuple[str, str] | None = None  # (summary, example)

    def permits(self, roles: list[str] | None) -> bool:
        mine = set(roles or [])
        return self.roles is None or "admin" in mine or bool(self.roles & mine)


COMMANDS: list[Command] = []


def command(*keywords: str, roles: tuple[str, ...] | None, example: str, summary: str,
            name: str | None = None, for_others: tuple[str, str] | None = None) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        COMMANDS.append(Command(name or fn.__name__, keywords, fn,
                                frozenset(roles) if roles is not None else None, example, summary, for_others))
        return fn
    return register


def match(text: str, *, spaced: bool = False) -> tuple[Command, str] | None:
    """The command ``text`` invokes and the rest of the text (its arguments): the longest keyword that
    ``text`` starts with (the first registered of equally long ones). ``spaced``: only the keyword alone
    or followed by a space (``客户 华为``, not ``客户华为``), the form that is a command in any context."""
    text = text.strip()
    if not text:
        return None
    for kw, cmd in _by_first_character().get(text[0], ()):
        if text == kw or text.startswith(kw + " ") or text.startswith(kw + "\u3000") or \
                (not spaced and text.startswith(kw) and _keyword_may_touch(kw, text)):
            # 客户：杭州云栖 / 联系人，杭州云栖 …: punctuation right after the keyword separates like a space
            return cmd, text[len(kw):].strip().lstrip(":：,，、").strip()
    return None


_index: tuple[int, Command | None, dict[str, list[tuple[str, Command]]]] = (-1, None, {})


def _by_first_character() -> dict[str, list[tuple[str, Command]]]:
    """Keywords by their first character, longest first (every message is matched: ~200 keywords)."""
    global _index
    count, last, index = _index
    if count != len(COMMANDS) or (COMMANDS and last is not COMMANDS[-1]):  # registered since (or a test's)
        ordered = sorted(((kw, cmd) for cmd in COMMANDS for kw in cmd.keywords), key=lambda pair: -len(pair[0]))
        index = {}
        for kw, cmd in ordered:  # sorted() is stable: equally long keywords keep their registration order
            if kw:
                index.setdefault(kw[0], []).append((kw, cmd))
        _index = (len(COMMANDS), COMMANDS[-1] if COMMANDS else None, index)
    return index


def _keyword_may_touch(kw: str, text: str) -> bool:
    # Chinese users often omit the space: 客户华为 → 客户 华为. Only for CJK keywords followed by
    # something that is not itself a longer CJK command word.
    return all("\u4e00" <= ch <= "\u9fff" for ch in kw) and len(text) > len(kw)


def allowed(roles: list[str] | None) -> list[Command]:
    return [c for c in COMMANDS if c.permits(roles)]


def suggest(text: str, roles: list[str] | None) -> Command | None:
    """The closest command keyword, for a hint when nothing matched."""
    words = {kw: c for c in allowed(roles) for kw in c.keywords}
    head = text.strip().split()[0] if text.strip() else ""
    close = difflib.get_close_matches(head, list(words), n=1, cutoff=0.5)
    return words[close[0]] if close else None
