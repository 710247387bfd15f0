"""Speech-to-text through a generic HTTP provider (off by default).

Contract: POST ``<base_url>`` with the audio bytes as the body, ``Content-Type`` of the clip and
``Authorization: Bearer <key>``; the answer is JSON ``{"text": "…"}``. Any failure returns None: the
clip itself stays the evidence.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

log = logging.getLogger(__name__)


def transcribe(settings: dict[str, Any], audio: bytes, content_type: str, timeout: float = 15.0) -> str | None:
    if not settings.get("enabled") or not settings.get("base_url"):
        return None
    try:
        res = requests.post(settings["base_url"], data=audio, timeout=timeout,
                            headers={"Content-Type": content_type or "audio/amr",
                                     "Authorization": f"Bearer {settings.get('key', '')}"})
        res.raise_for_status()
        text = res.json().get("text")
    except (requests.RequestException, ValueError, AttributeError) as exc:
        log.warning("speech-to-text failed", extra={"error": type(exc).__name__})
        return None
    return text.strip() if isinstance(text, str) and text.strip() else None
