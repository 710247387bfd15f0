"""Parsing of decrypted callback XML into ``Inbound`` values.

XML is parsed with defusedxml (no DTDs, no entities: billion-laughs and XXE payloads are refused).
Message kinds and event kinds are declared in a table, field name → XML element, like wechatpy's
registries; it also covers what wechatpy 1.8.18 lacks: ``template_card_event``,
``template_card_menu_event`` and ``change_external_contact``.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET  # noqa: S405  (only for types; parsing goes through defusedxml)
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from bot.crypto import CallbackRejected

MAX_XML_DEPTH = 8

COMMON = {"ToUserName": "to_user", "FromUserName": "from_user", "CreateTime": "create_time",
          "MsgType": "msg_type", "MsgId": "msg_id", "AgentID": "agent_id"}

# MsgType → extra fields (element → attribute)
MESSAGE_FIELDS: dict[str, dict[str, str]] = {
    "text": {"Content": "content"},
    "image": {"PicUrl": "pic_url", "MediaId": "media_id"},
    "voice": {"MediaId": "media_id", "Format": "format"},
    "video": {"MediaId": "media_id", "ThumbMediaId": "thumb_media_id"},
    "location": {"Location_X": "location_x", "Location_Y": "location_y", "Scale": "scale", "Label": "label"},
    "link": {"Title": "title", "Description": "description", "Url": "url", "PicUrl": "pic_url"},
}

# Event → extra fields
EVENT_FIELDS: dict[str, dict[str, str]] = {
    "enter_agent": {"EventKey": "event_key"},
    "click": {"EventKey": "event_key"},
    "view": {"EventKey": "event_key"},
    "subscribe": {},
    "unsubscribe": {},
    "template_card_event": {"EventKey": "event_key", "TaskId": "task_id", "CardType": "card_type",
                            "ResponseCode": "response_code"},
    "template_card_menu_event": {"EventKey": "event_key", "TaskId": "task_id", "CardType": "card_type",
                                 "ResponseCode": "response_code"},
    "change_external_contact": {"ChangeType": "change_type", "UserID": "user_id",
                                "ExternalUserID": "external_userid", "State": "state",
                                "WelcomeCode": "welcome_code"},
}


@dataclass(frozen=True)
class Inbound:
    """One decrypted message or event from WeCom."""

    msg_type: str
    from_user: str
    create_time: int
    to_user: str = ""
    agent_id: str = ""
    msg_id: str | None = None
    event: str | None = None
    content: str = ""
    media_id: str | None = None
    pic_url: str | None = None
    format: str | None = None
    thumb_media_id: str | None = None
    location_x: str | None = None
    location_y: str | None = None
    scale: str | None = None
    label: str | None = None
    title: str | None = None
    description: str | None = None
    url: str | None = None
    event_key: str | None = None
    task_id: str | None = None
    card_type: str | None = None
    response_code: str | None = None
    selected_items: dict[str, list[str]] = field(default_factory=dict)
    change_type: str | None = None
    user_id: str | None = None
    external_userid: str | None = None
    state: str | None = None
    welcome_code: str | None = None
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def is_event(self) -> bool:
        return self.msg_type == "event"

    @property
    def is_card_click(self) -> bool:
        return self.event == "template_card_event"

    @property
    def sent_at(self) -> datetime:
        return datetime.fromtimestamp(self.create_time, UTC)

    @property
    def callback_key(self) -> str:
        """Dedup key: MsgId for messages; FromUserName+CreateTime+Event+EventKey+TaskId for events."""
        if self.msg_id:
            return f"msg:{self.msg_id}"
        parts = [self.from_user, str(self.create_time), self.event or "", self.event_key or "",
                 self.task_id or "", self.change_type or "", self.external_userid or ""]
        return "evt:" + ":".join(parts)

    @property
    def text(self) -> str:
        return self.content.strip()


def safe_parse(xml_text: str | bytes) -> ET.Element:
    """Parse untrusted XML; DTDs, entities and absurd nesting are refused as CallbackRejected."""
    try:
        root = SafeET.fromstring(xml_text, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except (DefusedXmlException, ET.ParseError, ValueError) as exc:
        raise CallbackRejected(f"malformed XML: {type(exc).__name__}") from None
    if _depth(root) > MAX_XML_DEPTH:
        raise CallbackRejected("XML nested too deeply")
    return root


def _depth(el: ET.Element, level: int = 1) -> int:
    return max([level] + [_depth(child, level + 1) for child in el])


def _to_dict(el: ET.Element) -> Any:
    children = list(el)
    if not children:
        return (el.text or "").strip() if el.text and el.text.strip() else (el.text or "")
    out: dict[str, Any] = {}
    for child in children:
        value = _to_dict(child)
        if child.tag in out:
            if not isinstance(out[child.tag], list):
                out[child.tag] = [out[child.tag]]
            out[child.tag].append(value)
        else:
            out[child.tag] = value
    return out


def _selected_items(el: ET.Element) -> dict[str, list[str]]:
    items: dict[str, list[str]] = {}
    box = el.find("SelectedItems")
    if box is None:
        return items
    for item in box.findall("SelectedItem"):
        key = (item.findtext("QuestionKey") or "").strip()
        options = [(o.text or "").strip() for o in item.findall("OptionIds/OptionId")]
        if key:
            items[key] = options
    return items


def parse_inbound(xml_text: str | bytes) -> Inbound:
    """Decrypted plaintext XML → Inbound. Unknown kinds still parse (kept in ``raw``)."""
    root = safe_parse(xml_text)
    if root.tag != "xml":
        raise CallbackRejected("root element is not <xml>")
    raw = _to_dict(root)
    if not isinstance(raw, dict):
        raise CallbackRejected("empty message")

    def text(tag: str) -> str | None:
        value = root.findtext(tag)
        return value.strip() if value is not None else None

    msg_type = (text("MsgType") or "").lower()
    from_user = text("FromUserName") or ""
    if not msg_type or not from_user:
        raise CallbackRejected("MsgType or FromUserName missing")
    try:
        create_time = int(text("CreateTime") or "0")
    except ValueError:
        raise CallbackRejected("CreateTime is not a number") from None
    values: dict[str, Any] = {"msg_type": msg_type, "from_user": from_user, "create_time": create_time,
                              "to_user": text("ToUserName") or "", "agent_id": text("AgentID") or "",
                              "msg_id": text("MsgId") or None, "raw": raw}
    if msg_type == "event":
        event = (text("Event") or "").lower()
        values["event"] = event
        fields = EVENT_FIELDS.get(event, {"EventKey": "event_key"})
    else:
        fields = MESSAGE_FIELDS.get(msg_type, {})
    for tag, attr in fields.items():
        value = root.findtext(tag)
        if value is not None:
            values[attr] = value if attr == "content" else value.strip()
    if values.get("event") == "template_card_event":
        values["selected_items"] = _selected_items(root)
    return Inbound(**values)
