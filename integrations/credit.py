"""Credit provider: a generic JSON HTTP API (ours; a provider is adapted to it).

Contract, every request with ``Authorization: Bearer <key>``:

- ``GET <base_url>?credit_code=<code>`` (or ``name=<customer name>`` when there is no code) answers
  ``{"rating": "BBB", "agency": "…", "scale": "S&P", "rated_on": "2026-11-27"}``; 404 means the provider
  has no rating.
- Optional, used when ``batch_url`` is configured: ``POST <batch_url>`` with
  ``{"items": [{"ref": "0", "credit_code": "…"}, {"ref": "1", "name": "…"}, …]}`` (at most
  ``batch_size`` items; ``ref`` is ours, unique in the request) answers
  ``{"results": [{"ref": "0", "rating": "BBB", "agency": "…", "scale": "S&P", "rated_on": "…"},
  {"ref": "1", "status": 404}, {"ref": "2", "error": "…"}, …]}`` in any order. An item with no result or
  ``"status": 404`` has no rating (as a 404); a result with ``"error"`` (or one that cannot be read)
  fails that item alone; an answer other than 2xx fails every item of the request.

Failures raise (``fetch_rating``) or are returned per item (``CreditClient.lookup``) as ``CreditError``.
``CreditClient`` keeps connections alive (one ``requests.Session`` per thread) and has up to
``concurrency`` requests in flight, each with the ``timeout_s`` timeout.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import requests

DEFAULT_TIMEOUT_S = 15.0
DEFAULT_CONCURRENCY = 8
DEFAULT_BATCH_SIZE = 500


class CreditError(Exception):
    pass


@dataclass(frozen=True)
class ProviderRating:
    rating: str
    agency: str
    scale: str
    rated_on: date


Answer = ProviderRating | CreditError | None  # None: the provider has no rating


def _headers(settings: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.get('key', '')}"}


def _rating(body: Any) -> ProviderRating:
    """A rating from one answer (the GET's body or one batch result); raises on a malformed one."""
    rating = str(body["rating"]).strip()
    rated_on = date.fromisoformat(str(body.get("rated_on") or date.today().isoformat())[:10])
    return ProviderRating(rating, str(body.get("agency") or ""), str(body.get("scale") or "S&P"), rated_on)


def fetch_rating(settings: dict[str, Any], credit_code: str | None, name: str,
                 timeout: float = DEFAULT_TIMEOUT_S, *, http: requests.Session | None = None) -> ProviderRating | None:
    """One customer's rating by the GET (``http``: a session to reuse connections); None on a 404."""
    params = {"credit_code": credit_code} if credit_code else {"name": name}
    try:
        res = (http or requests).get(str(settings["base_url"]), params=params, timeout=timeout,
                                     headers=_headers(settings))
        if res.status_code == 404:
            return None
        res.raise_for_status()
        return _rating(res.json())
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise CreditError(f"credit API: {type(exc).__name__}") from None


def fetch_batch(settings: dict[str, Any], queries: Sequence[tuple[str | None, str]],
                timeout: float = DEFAULT_TIMEOUT_S, *, http: requests.Session | None = None) -> list[Answer]:
    """Ratings of several customers (``(credit_code, name)`` each) by one POST to the batch endpoint, in
    the order asked: a rating, None (no rating) or the item's CreditError. Raises CreditError when the
    whole request failed."""
    items = [{"ref": str(i), "credit_code": code} if code else {"ref": str(i), "name": name}
             for i, (code, name) in enumerate(queries)]
    try:
        res = (http or requests).post(str(settings["batch_url"]), json={"items": items}, timeout=timeout,
                                      headers=_headers(settings))
        res.raise_for_status()
        results = res.json()["results"]
        by_ref = {str(r["ref"]): r for r in results if isinstance(r, dict) and "ref" in r}
    except (requests.RequestException, ValueError, KeyError, TypeError) as exc:
        raise CreditError(f"credit API (batch): {type(exc).__name__}") from None
    answers: list[Answer] = []
    for item in items:
        result = by_ref.get(item["ref"])
        if result is None or result.get("status") == 404:
            answers.append(None)
        elif result.get("error") is not None:
            answers.append(CreditError(f"credit API (batch item): {str(result['error'])[:200]}"))
        else:
            try:
                answers.append(_rating(result))
            except (ValueError, KeyError, TypeError) as exc:
                answers.append(CreditError(f"credit API (batch item): {type(exc).__name__}"))
    return answers


class CreditClient:
    """Lookups of many customers: batch requests when ``batch_url`` is configured, else one GET each;
    up to ``concurrency`` requests in flight over keep-alive connections. Use as a context manager."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self.timeout = float(settings.get("timeout_s") or DEFAULT_TIMEOUT_S)
        self.batch_size = int(settings.get("batch_size") or DEFAULT_BATCH_SIZE)
        self.batched = bool(settings.get("batch_url"))
        self._pool = ThreadPoolExecutor(max_workers=int(settings.get("concurrency") or DEFAULT_CONCURRENCY),
                                        thread_name_prefix="credit")
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()

    def __enter__(self) -> CreditClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            for http in self._sessions:
                http.close()
            self._sessions.clear()

    def _http(self) -> requests.Session:
        http = getattr(self._local, "http", None)
        if http is None:
            http = self._local.http = requests.Session()
            with self._lock:
                self._sessions.append(http)
        return http

    def _one(self, code: str | None, name: str) -> Answer:
        try:
            return fetch_rating(self.settings, code, name, self.timeout, http=self._http())
        except CreditError as exc:
            return exc

    def _batch(self, queries: Sequence[tuple[str | None, str]]) -> list[Answer]:
        try:
            return fetch_batch(self.settings, queries, self.timeout, http=self._http())
        except CreditError as exc:
            return [exc] * len(queries)

    def submit(self, queries: Sequence[tuple[str | None, str]]) -> Callable[[], list[Answer]]:
        """Start the lookups of ``queries`` (``(credit_code, name)`` each); the returned function waits
        for them and gives one answer per query, in order: a rating, None (no rating) or a CreditError."""
        if self.batched:
            parts: list[Future[list[Answer]]] = [
                self._pool.submit(self._batch, queries[i:i + self.batch_size])
                for i in range(0, len(queries), self.batch_size)]
            return lambda: [answer for part in parts for answer in part.result()]
        singles = [self._pool.submit(self._one, code, name) for code, name in queries]
        return lambda: [f.result() for f in singles]

    def lookup(self, queries: Sequence[tuple[str | None, str]]) -> list[Answer]:
        return self.submit(queries)()
