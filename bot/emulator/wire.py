"""WeCom's side of the callback wire: build the XML WeCom would post, read the passive reply.

Used by the emulator console, ``salesbot chat`` and the tests, so all three speak exactly what
WeCom speaks (PROTOCOL.md §1–2).
"""

from __future__ import annotations

import itertools
import random
import threading
import time

from bot.crypto import WeComCrypto
from bot.inbound import safe_parse

_MSGID = itertools.count(random.randint(10**17, 10**18))  # noqa: S311
_LOCK = threading.Lock()


def next_msgid() -> str:
    with _LOCK:
        return str(next(_MSGID))


def _cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def _head(corp_id: str, userid: str, msg_type: str, create_time: int | None) -> str:
    return (f"<ToUserName>{_cdata(corp_id)}</ToUserName><FromUserName>{_cdata(userid)}</FromUserName>"
            f"<CreateTime>{create_time or int(time.time())}</CreateTime><MsgType>{_cdata(msg_type)}</MsgType>")


def message_xml(corp_id: str, agent_id: int, userid: str, msg_type: str, fields: dict[str, str],
                msg_id: str | None = None, create_time: int | None = None) -> str:
    """A member's message (text, image, voice, video, location, link) as plaintext XML."""
    inner = "".join(f"<{k}>{_cdata(v)}</{k}>" for k, v in fields.items())
    return (f"<xml>{_head(corp_id, userid, msg_type, create_time)}{inner}"
            f"<MsgId>{msg_id or next_msgid()}</MsgId><AgentID>{agent_id}</AgentID></xml>")


def text_xml(corp_id: str, agent_id: int, userid: str, content: str, msg_id: str | None = None,
             create_time: int | None = None) -> str:
    return message_xml(corp_id, agent_id, userid, "text", {"Content": content}, msg_id, create_time)


def card_click_xml(corp_id: str, agent_id: int, userid: str, task_id: str, key: str, card_type: str,
                   response_code: str, selected: dict[str, list[str]] | None = None,
                   create_time: int | None = None) -> str:
    """A template_card_event as WeCom posts it when a member clicks a card button or submits."""
    items = ""
    if selected:
        parts = []
        for q, opts in selected.items():
            ids = "".join(f"<OptionId>{_cdata(o)}</OptionId>" for o in opts)
            parts.append(f"<SelectedItem><QuestionKey>{_cdata(q)}</QuestionKey><OptionIds>{ids}</OptionIds>"
                         "</SelectedItem>")
        items = "<SelectedItems>" + "".join(parts) + "</SelectedItems>"
    return (f"<xml>{_head(corp_id, userid, 'event', create_time)}<Event>{_cdata('template_card_event')}</Event>"
            f"<EventKey>{_cdata(key)}</EventKey><TaskId>{_cdata(task_id)}</TaskId>"
            f"<CardType>{_cdata(card_type)}</CardType><ResponseCode>{_cdata(response_code)}</ResponseCode>"
            f"<AgentID>{agent_id}</AgentID>{items}</xml>")


def event_xml(corp_id: str, agent_id: int, userid: str, event: str, event_key: str = "",
              create_time: int | None = None) -> str:
    return (f"<xml>{_head(corp_id, userid, 'event', create_time)}<Event>{_cdata(event)}</Event>"
            f"<EventKey>{_cdata(event_key)}</EventKey><AgentID>{agent_id}</AgentID></xml>")


def read_passive_reply(crypto: WeComCrypto, body: str) -> dict[str, str] | None:
    """Decrypt a passive reply envelope to its fields (MsgType, Content or Button/ReplaceName)."""
    if not body.strip():
        return None
    env = safe_parse(body)
    plain = crypto.decrypt(env.findtext("MsgSignature") or "", env.findtext("TimeStamp") or "",
                           env.findtext("Nonce") or "", env.findtext("Encrypt") or "", now=None)
    root = safe_parse(plain)
    out = {child.tag: (child.text or "") for child in root if len(child) == 0}
    button = root.find("Button/ReplaceName")
    if button is not None:
        out["ReplaceName"] = button.text or ""
    return out


__all__ = ["card_click_xml", "event_xml", "message_xml", "read_passive_reply", "text_xml"]
