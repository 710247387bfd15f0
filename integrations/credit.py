"""Credit provider: a generic JSON HTTP API.

Contract: ``GET <base_url>?credit_code=<code>`` (or ``name=<customer name>`` when there is no code) with
``Authorization: Bearer <key>`` answers ``{"rating": "BBB", "agency": "…", "scale": "S&P",
"rated_on": "2026-11-27"}``; 404 means the provider has no rating. Failures raise ``CreditError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import requests


class CreditError(Exception):
    pass


@dataclass(frozen=True)
class ProviderRating:
    rating: str
    agency: str
    scale: str
    rated_on: date


def fetch_rating(settings: dict[str, Any], credit_code: str | None, name: str,
                 timeout: float = 15.0) -> ProviderRating | None:
    params = {"credit_code": credit_code} if credit_code else {"name": name}
    try:
        res = requests.get(str(settings["base_url"]), params=params, timeout=timeout,
                           headers={"Authorization": f"Bearer {settings.get('key', '')}"})
        if res.status_code == 404:
            return None
        res.raise_for_status()
        body = res.json()
        rating = str(body["rating"]).strip()
        rated_on = date.fromisoformat(str(body.get("rated_on") or date.today().isoformat())[:10])
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise CreditError(f"credit API: {type(exc).__name__}") from None
    return ProviderRating(rating, str(body.get("agency") or ""), str(body.get("scale") or "S&P"), rated_on)
