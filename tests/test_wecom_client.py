"""The outbound WeCom client: one access token shared by every process through Redis, fetched once,
refreshed once when WeCom says it expired (42001) or is invalid (40014), and the call retried once.

WeCom is faked at the HTTP layer (``wecom`` fixture: ``responses`` → WeComState); errors are injected
by wrapping WeComState.handle, which the ``responses`` callback calls for every request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from wechatpy.exceptions import WeChatClientException

from bot.emulator.state import WeComState
from bot.runtime import Runtime
from bot.wecom import TokenConfigError

Handle = Callable[..., Any]


class Faults:
    """Answers injected in front of the fake WeCom, per API, each used ``times`` times."""

    def __init__(self, state: WeComState) -> None:
        self.state = state
        self.real: Handle = state.handle
        self.rules: list[list[Any]] = []  # [api, times left, fn(real, api, query, body, files)]
        self.requests: list[str] = []  # every API request that reached WeCom, injected or not
        self.lock = threading.Lock()
        state.handle = self.handle  # type: ignore[method-assign]

    def add(self, api: str, fn: Callable[..., Any], times: int = 1) -> None:
        with self.lock:
            self.rules.append([api, times, fn])

    def answer(self, api: str, result: dict[str, Any], times: int = 1) -> None:
        self.add(api, lambda *_: (dict(result), "application/json"), times)

    def handle(self, api: str, query: dict[str, str], body: bytes | None, files: Any = None) -> Any:
        with self.lock:
            self.requests.append(api)
            rule = next((r for r in self.rules if r[0] == api and r[1] > 0), None)
            if rule is not None:
                rule[1] -= 1
        if rule is None:
            return self.real(api, query, body, files)
        return rule[2](self.real, api, query, body, files)


@pytest.fixture
def member(wecom: WeComState) -> str:
    wecom.add_member("zhangsan", "张三")
    return "zhangsan"


def contents(state: WeComState, userid: str) -> list[str]:
    return [m.body.get("content", "") for m in state.inbox(userid)]


# ---- one token for everyone ----------------------------------------------------------------------


def test_fifty_sends_from_two_processes_fetch_the_token_once(make_runtime, wecom, member):
    a, b = make_runtime(), make_runtime()
    assert a.wecom is not b.wecom  # two independent clients, sharing only Redis
    for i in range(25):
        a.wecom.send_message(member, "text", {"content": f"a{i}"})
        b.wecom.send_message(member, "text", {"content": f"b{i}"})
    assert wecom.count("gettoken") == 1
    assert wecom.count("message/send") == 50
    assert sorted(contents(wecom, member)) == sorted([f"a{i}" for i in range(25)] + [f"b{i}" for i in range(25)])


def test_fifty_concurrent_sends_from_two_processes_fetch_the_token_once(make_runtime, wecom, member):
    clients = [make_runtime().wecom, make_runtime().wecom]
    start = threading.Barrier(10)

    def send(i: int) -> None:
        if i < 10:
            start.wait(timeout=10)  # the first ten race for the (missing) token together
        clients[i % 2].send_message(member, "text", {"content": f"m{i}"})

    with ThreadPoolExecutor(max_workers=10) as pool:
        list(pool.map(send, range(50)))
    assert wecom.count("gettoken") == 1
    assert sorted(contents(wecom, member)) == sorted(f"m{i}" for i in range(50))


def test_the_token_is_kept_in_redis_not_per_process(make_runtime, wecom, member):
    a = make_runtime()
    a.wecom.send_message(member, "text", {"content": "first"})
    token = a.redis.get(a.wecom.token_key)
    assert token and token in wecom.tokens
    # a process started later uses the stored token
    make_runtime().wecom.send_message(member, "text", {"content": "second"})
    assert wecom.count("gettoken") == 1
    assert wecom.calls[-1][1]["query"]["access_token"] == token


def test_wechatpy_api_helpers_use_the_shared_token(rt: Runtime, wecom, member):
    assert rt.wecom.user.get(member)["name"] == "张三"
    rt.wecom.send_message(member, "text", {"content": "hi"})
    assert wecom.count("gettoken") == 1


# ---- expiry and invalidation ---------------------------------------------------------------------


def test_expired_token_42001_is_refreshed_once_and_the_message_arrives_once(rt: Runtime, wecom, member):
    rt.wecom.send_message(member, "text", {"content": "before"})
    wecom.expire_tokens()
    result = rt.wecom.send_message(member, "text", {"content": "after expiry"})
    assert result["errcode"] == 0 and result["msgid"]
    assert wecom.count("gettoken") == 2  # the first fetch and exactly one refresh
    assert contents(wecom, member) == ["before", "after expiry"]
    answers = [c for c in wecom.calls if c[0] == "message/send"]
    assert len(answers) == 3  # ok, 42001, retried ok


def test_invalidated_token_40014_is_refreshed_once_and_the_message_arrives_once(rt: Runtime, wecom, member):
    rt.wecom.send_message(member, "text", {"content": "before"})
    old = rt.redis.get(rt.wecom.token_key)
    with wecom.lock:
        wecom.tokens.clear()  # WeCom invalidated every token early: the stored one is now unknown
    rt.wecom.send_message(member, "text", {"content": "after invalidation"})
    assert wecom.count("gettoken") == 2
    assert rt.redis.get(rt.wecom.token_key) != old
    assert contents(wecom, member) == ["before", "after invalidation"]


def test_concurrent_expiry_in_two_processes_refreshes_once(make_runtime, wecom, member):
    clients = [make_runtime().wecom, make_runtime().wecom]
    clients[0].send_message(member, "text", {"content": "warm up"})
    wecom.expire_tokens()
    start = threading.Barrier(8)

    def send(i: int) -> None:
        start.wait(timeout=10)
        clients[i % 2].send_message(member, "text", {"content": f"x{i}"})

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, range(8)))
    assert wecom.count("gettoken") == 2
    assert sorted(contents(wecom, member)) == sorted(["warm up"] + [f"x{i}" for i in range(8)])


def test_a_token_error_twice_in_a_row_is_retried_only_once(rt: Runtime, wecom, member):
    faults = Faults(wecom)
    faults.answer("message/send", {"errcode": 42001, "errmsg": "access_token expired"}, times=5)
    with pytest.raises(WeChatClientException) as err:
        rt.wecom.send_message(member, "text", {"content": "never"})
    assert err.value.errcode == 42001
    assert faults.requests.count("message/send") == 2  # the call and one retry, no loop
    assert wecom.count("gettoken") == 2  # the first fetch and one refresh
    assert wecom.inbox(member) == []


def test_an_old_token_failing_does_not_throw_away_a_newer_one(make_runtime, wecom, member):
    """Process B still holds the token process A already replaced: B takes A's new token, no fetch."""
    a, b = make_runtime(), make_runtime()
    a.wecom.send_message(member, "text", {"content": "one"})
    stale = a.redis.get(a.wecom.token_key)
    wecom.expire_tokens()
    a.wecom.send_message(member, "text", {"content": "two"})  # A refreshes
    assert wecom.count("gettoken") == 2
    assert b.wecom.refresh_token(stale=stale) == a.redis.get(a.wecom.token_key)
    assert wecom.count("gettoken") == 2


def test_a_wrong_secret_is_a_configuration_error(make_runtime, wecom, member):
    bad = make_runtime(wecom__secret="not-the-secret")
    with pytest.raises(TokenConfigError):
        bad.wecom.send_message(member, "text", {"content": "x"})
    assert wecom.inbox(member) == []


def test_upload_after_expiry_resends_the_file(rt: Runtime, wecom, member):
    rt.wecom.send_message(member, "text", {"content": "warm up"})
    wecom.expire_tokens()
    png = b"\x89PNG\r\n\x1a\n" + b"x" * 64
    media_id = rt.wecom.upload_media("image", "chart.png", png)
    assert wecom.media[media_id][1] == png
    assert wecom.count("gettoken") == 2


def test_media_download_after_expiry_refreshes_and_returns_the_file(rt: Runtime, wecom, member):
    media_id = wecom.add_media("voice.amr", b"#!AMR\n" + b"\x00" * 32, "audio/amr")
    data, ctype = rt.wecom.get_media(media_id)
    assert data.startswith(b"#!AMR") and ctype == "audio/amr"
    wecom.expire_tokens()
    data, ctype = rt.wecom.get_media(media_id)
    assert data.startswith(b"#!AMR") and ctype == "audio/amr"
    assert wecom.count("gettoken") == 2
    assert wecom.count("media/get") == 3  # ok, 42001, retried ok


def test_unknown_media_is_an_error_not_json_bytes(rt: Runtime, wecom):
    with pytest.raises(WeChatClientException) as err:
        rt.wecom.get_media("no-such-media")
    assert err.value.errcode == 40007
