"""An OpenAI-compatible chat-completions API (optional). Any failure returns None: callers fall back
to the offline path.

Contract: ``POST <base_url>chat/completions`` (base_url ends with /, e.g. https://host/v1/) with
``Authorization: Bearer <key>`` and ``{"model", "messages", "temperature": 0}``; the answer's
``choices[0].message.content`` is returned.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

log = logging.getLogger(__name__)


def chat_completion(settings: dict[str, Any], system: str, user: str, timeout: float = 20.0) -> str | None:
    if not settings.get("enabled") or not settings.get("base_url"):
        return None
    url = str(settings["base_url"]).rstrip("/") + "/chat/completions"
    body = {"model": settings.get("model") or "default", "temperature": 0,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}]}
    try:
        res = requests.post(url, json=body, timeout=timeout,
                            headers={"Authorization": f"Bearer {settings.get('key', '')}"})
        res.raise_for_status()
        content = res.json()["choices"][0]["message"]["content"]
    except (requests.RequestException, ValueError, KeyError, IndexError, TypeError) as exc:
        log.warning("LLM call failed; using the offline path", extra={"error": type(exc).__name__})
        return None
    return content if isinstance(content, str) else None
