"""What the bot says: message values, WeCom payload shapes and the 2048-byte limit."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass, field
from typing import Any

MAX_CONTENT_BYTES = 2048
TASK_ID_RE = re.compile(r"^[A-Za-z0-9_\-@]{1,128}$")
CARD_TYPES = ("text_notice", "news_notice", "button_interaction", "vote_interaction", "multiple_interaction")


@dataclass(frozen=True)
class Text:
    content: str


@dataclass(frozen=True)
class Markdown:
    content: str


@dataclass(frozen=True)
class Image:
    png: bytes
    filename: str = "chart.png"


@dataclass(frozen=True)
class Card:
    """A template card. ``kind`` routes clicks; ``subject`` says what the card is about."""

    kind: str
    card: dict[str, Any]
    subject: dict[str, Any] = field(default_factory=dict)

    @property
    def card_type(self) -> str:
        return str(self.card["card_type"])


@dataclass(frozen=True)
class CardUpdate:
    """Replace a clicked card's button with ``replace_name`` (e.g. 已批准)."""

    replace_name: str


Out = Text | Markdown | Image | Card | CardUpdate


def split_utf8(text: str, limit: int = MAX_CONTENT_BYTES) -> list[str]:
    """Split into pieces of at most ``limit`` UTF-8 bytes, never inside a character; prefer newlines."""
    if len(text.encode("utf-8")) <= limit:
        return [text]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        for ch in line:
            n = len(ch.encode("utf-8"))
            if size + n > limit:
                pieces.append("".join(current))
                current, size = [], 0
            current.append(ch)
            size += n
        # break at a line end when the next line probably will not fit
        if size > limit * 0.75:
            pieces.append("".join(current))
            current, size = [], 0
    if current:
        pieces.append("".join(current))
    return [p.rstrip("\n") for p in pieces if p.strip()]


def new_task_id(kind: str) -> str:
    safe_kind = re.sub(r"[^A-Za-z0-9_\-]", "_", kind)[:40]
    return f"{safe_kind}-{secrets.token_hex(12)}"


def wire_bodies(out: Out) -> list[tuple[str, dict[str, Any]]]:
    """The (msgtype, body) pairs to send for one message; long text and markdown are split. An image's body
    names its file; its bytes are queued beside it (the outbox's ``media``) and uploaded when it is sent."""
    if isinstance(out, Text):
        return [("text", {"content": piece}) for piece in split_utf8(out.content)]
    if isinstance(out, Markdown):
        return [("markdown", {"content": piece}) for piece in split_utf8(out.content)]
    if isinstance(out, Image):
        return [("image", {"filename": out.filename})]
    if isinstance(out, Card):
        return [("template_card", dict(out.card))]
    raise TypeError(f"{type(out).__name__} is not sent through message/send")


# ---- card builders: the five template-card types ---------------------------------------------

def button_card(title: str, desc: str, buttons: list[tuple[str, str, int]], *,
                rows: list[tuple[str, str]] | None = None, quote: str | None = None) -> dict[str, Any]:
    """button_interaction; buttons are (text, key, style 1–4)."""
    card: dict[str, Any] = {
        "card_type": "button_interaction",
        "main_title": {"title": title, "desc": desc},
        "button_list": [{"text": t, "key": k, "style": s} for t, k, s in buttons[:6]],
    }
    if rows:
        card["horizontal_content_list"] = [{"keyname": k, "value": v} for k, v in rows[:6]]
    if quote:
        card["quote_area"] = {"type": 0, "quote_text": quote}
    return card


def text_notice_card(title: str, desc: str, url: str, *, emphasis: tuple[str, str] | None = None,
                     rows: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    card: dict[str, Any] = {
        "card_type": "text_notice",
        "main_title": {"title": title, "desc": desc},
        "card_action": {"type": 1, "url": url},
    }
    if emphasis:
        card["emphasis_content"] = {"title": emphasis[0], "desc": emphasis[1]}
    if rows:
        card["horizontal_content_list"] = [{"keyname": k, "value": v} for k, v in rows[:6]]
    return card


def news_notice_card(title: str, desc: str, url: str, image_url: str) -> dict[str, Any]:
    return {
        "card_type": "news_notice",
        "main_title": {"title": title, "desc": desc},
        "card_image": {"url": image_url, "aspect_ratio": 1.3},
        "card_action": {"type": 1, "url": url},
    }


def vote_card(title: str, desc: str, question_key: str, options: list[tuple[str, str]], submit_key: str,
              *, multi: bool = False) -> dict[str, Any]:
    return {
        "card_type": "vote_interaction",
        "main_title": {"title": title, "desc": desc},
        "checkbox": {"question_key": question_key, "mode": 1 if multi else 0,
                     "option_list": [{"id": i, "text": t} for i, t in options[:20]]},
        "submit_button": {"text": "提交", "key": submit_key},
    }


def select_card(title: str, desc: str, selects: list[tuple[str, str, list[tuple[str, str]]]],
                submit_key: str) -> dict[str, Any]:
    """multiple_interaction; selects are (question_key, title, [(option id, text)])."""
    return {
        "card_type": "multiple_interaction",
        "main_title": {"title": title, "desc": desc},
        "select_list": [{"question_key": q, "title": t,
                         "option_list": [{"id": i, "text": x} for i, x in opts[:10]]}
                        for q, t, opts in selects[:3]],
        "submit_button": {"text": "提交", "key": submit_key},
    }
