"""Outbound WeCom API client on wechatpy, with the access token shared by every process.

wechatpy keeps its token expiry per process (wechatpy issue #684) and refreshes in every process that
notices expiry. Here the token lives in Redis; one process at a time refreshes it under a Redis lock
while the others wait for the new value; a 40001/40014/42001 answer invalidates exactly the token that
failed, refreshes once and retries the call once.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import redis
import requests
from wechatpy.enterprise import WeChatClient
from wechatpy.exceptions import WeChatClientException

log = logging.getLogger(__name__)

TOKEN_ERRORS = (40001, 40014, 42001)
TOKEN_MARGIN_S = 300  # refresh this long before WeCom's expiry
LOCK_TTL_MS = 15000


class TokenConfigError(Exception):
    """gettoken refused the corp id / secret: a configuration problem, not a transient one."""


class WeComClient(WeChatClient):
    """``wechatpy.enterprise.WeChatClient`` with a Redis-shared token and a configurable base URL."""

    def __init__(self, corp_id: str, secret: str, agent_id: int, api_base_url: str,
                 redis_client: redis.Redis, timeout: float = 10.0) -> None:
        self.API_BASE_URL = api_base_url
        self.agent_id = agent_id
        self.redis = redis_client
        # auto_retry off: token errors are handled here, once, against the shared token
        super().__init__(corp_id, secret, timeout=timeout, auto_retry=False)

    # ---- token ---------------------------------------------------------------------------

    @property
    def token_key(self) -> str:
        return f"wecom:token:{self.corp_id}:{self.agent_id}"

    @property
    def access_token(self) -> str:  # type: ignore[override]
        token = self.redis.get(self.token_key)
        return str(token) if token else self.refresh_token(stale=None)

    def fetch_access_token(self) -> dict[str, Any]:
        """wechatpy's hook; kept for its callers: refreshes the shared token."""
        return {"access_token": self.refresh_token(stale=self.redis.get(self.token_key))}

    def refresh_token(self, stale: str | None) -> str:
        """Replace ``stale`` (None: no token yet) with a fresh token, once across all processes."""
        lock_key = self.token_key + ":lock"
        deadline = time.monotonic() + LOCK_TTL_MS / 1000
        me = uuid.uuid4().hex
        while True:
            current = self.redis.get(self.token_key)
            if current and current != stale:
                return str(current)
            if self.redis.set(lock_key, me, nx=True, px=LOCK_TTL_MS):
                try:
                    current = self.redis.get(self.token_key)
                    if current and current != stale:
                        return str(current)
                    token, expires_in = self._gettoken()
                    self.redis.set(self.token_key, token, ex=max(60, expires_in - TOKEN_MARGIN_S))
                    return token
                finally:
                    if self.redis.get(lock_key) == me:
                        self.redis.delete(lock_key)
            if time.monotonic() > deadline:
                raise WeChatClientException(None, "timed out waiting for another process's token refresh")
            time.sleep(0.05)

    def _gettoken(self) -> tuple[str, int]:
        log.info("wecom gettoken", extra={"corp_id": self.corp_id})
        res = self._http.get(self.API_BASE_URL + "gettoken",
                             params={"corpid": self.corp_id, "corpsecret": self.secret}, timeout=self.timeout)
        res.raise_for_status()
        data = res.json()
        errcode = int(data.get("errcode", 0) or 0)
        if errcode == 40001 or errcode == 40013:
            raise TokenConfigError(f"gettoken refused the corp id or secret (errcode {errcode})")
        if errcode:
            raise WeChatClientException(errcode, data.get("errmsg", ""), client=self)
        return str(data["access_token"]), int(data.get("expires_in", 7200))

    # ---- calls ---------------------------------------------------------------------------

    def _request(self, method: str, url_or_endpoint: str, **kwargs: Any) -> Any:
        kwargs.pop("_token_retried", None)
        return super()._request(method, url_or_endpoint, **kwargs)

    def _handle_result(self, res: Any, method: Any = None, url: Any = None,
                       result_processor: Any = None, **kwargs: Any) -> Any:
        result = self._decode_result(res) if not isinstance(res, dict) else res
        if isinstance(result, dict) and int(result.get("errcode", 0) or 0) in TOKEN_ERRORS:
            params = kwargs.get("params") or {}
            used = params.get("access_token")
            if kwargs.get("_token_retried"):
                raise WeChatClientException(int(result["errcode"]), result.get("errmsg", ""), client=self)
            fresh = self.refresh_token(stale=used)
            params["access_token"] = fresh
            kwargs["params"] = params
            for k in ("method", "url_or_endpoint"):
                kwargs.pop(k, None)
            return self._retry_once(method, url, result_processor, kwargs)
        return super()._handle_result(res, method, url, result_processor, **kwargs)

    def _retry_once(self, method: str, url: str, result_processor: Any, kwargs: dict[str, Any]) -> Any:
        res = self._http.request(method=method, url=url, **{k: v for k, v in kwargs.items()
                                                           if k != "_token_retried"})
        try:
            res.raise_for_status()
        except requests.RequestException:
            raise WeChatClientException(None, f"HTTP {res.status_code}", client=self) from None
        return self._handle_result(res, method, url, result_processor, _token_retried=True, **kwargs)

    def send_message(self, touser: str, msgtype: str, body: dict[str, Any],
                     duplicate_check_interval: int | None = None) -> dict[str, Any]:
        """POST message/send for one member; returns WeCom's JSON (msgid, response_code, invaliduser).

        With ``duplicate_check_interval`` (seconds) WeCom's enable_duplicate_check is on: the same
        content sent to the same member within the interval is accepted but not shown again. Use it for
        a retry whose first attempt may have arrived; it also swallows a deliberate repeat.
        """
        payload: dict[str, Any] = {"touser": touser, "msgtype": msgtype, "agentid": self.agent_id, msgtype: body}
        if duplicate_check_interval:
            payload["enable_duplicate_check"] = 1
            payload["duplicate_check_interval"] = int(duplicate_check_interval)
        return dict(self.post("message/send", data=payload))

    def update_card(self, userids: list[str], response_code: str, update: dict[str, Any]) -> dict[str, Any]:
        payload = {"userids": userids, "agentid": self.agent_id, "response_code": response_code, **update}
        return dict(self.post("message/update_template_card", data=payload))

    def upload_media(self, kind: str, filename: str, content: bytes) -> str:
        result = self.post("media/upload", params={"type": kind}, files={"media": (filename, content)})
        return str(result["media_id"])

    def get_media(self, media_id: str) -> tuple[bytes, str]:
        """Download a media file; returns (bytes, content type).

        WeCom answers a file, or JSON with an errcode; a token error refreshes the shared token and
        downloads once more, like every other call.
        """
        url = self.API_BASE_URL + "media/get"
        for attempt in (1, 2):
            token = self.access_token
            res = self._http.get(url, params={"access_token": token, "media_id": media_id}, timeout=self.timeout)
            try:
                res.raise_for_status()
            except requests.RequestException:
                raise WeChatClientException(None, f"HTTP {res.status_code}", client=self) from None
            ctype = res.headers.get("Content-Type", "application/octet-stream")
            result = self._decode_result(res) if ctype.startswith(("application/json", "text/plain")) else None
            if not isinstance(result, dict) or "errcode" not in result:
                return res.content, ctype
            errcode = int(result.get("errcode") or 0)
            if errcode in TOKEN_ERRORS and attempt == 1:
                self.refresh_token(stale=token)
                continue
            if errcode:
                raise WeChatClientException(errcode, result.get("errmsg", ""), client=self)
            return res.content, ctype
        raise AssertionError("unreachable")  # pragma: no cover

    def oauth_userid(self, code: str) -> str | None:
        """auth/getuserinfo: the member userid behind an OAuth code, or None for a non-member."""
        result = self.get("auth/getuserinfo", params={"code": code})
        return result.get("userid") or result.get("UserId")
