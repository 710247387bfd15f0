"""`salesbot demo` and `salesbot chat`: one process with the emulator, seeded, keeping its data across
runs unless --reset; chat talks to it through the real encrypted callback; and the README's demo
command works for a new user in a clean virtual environment."""

from __future__ import annotations

import base64
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from sqlalchemy import select

from bot.cli import main
from bot.config import load_config
from bot.demo import Demo, DemoCredentials
from bot.emulator.seed import DEMO_ADMINS, DEMO_MEMBERS
from storage.models import Member

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(url: str, timeout: float) -> requests.Response:
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            r = requests.get(url, timeout=2)
            if r.status_code == 200:
                return r
        except requests.RequestException as exc:
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer 200 within {timeout} s ({last})")


@pytest.fixture
def start_demo(tmp_path: Path) -> Iterator[object]:
    started: list[Demo] = []

    def start(reset: bool = False) -> Demo:
        d = Demo(tmp_path / "data", port=0, reset=reset, redis_name=f"demo-{uuid.uuid4().hex}")
        d.start()
        started.append(d)
        return d
    yield start
    for d in started:
        if not d.stopping.is_set():
            d.stop()


def test_generated_credentials_are_valid_wecom_settings() -> None:
    creds = DemoCredentials.generate()
    assert re.fullmatch(r"ww[0-9a-f]{16}", creds.corp_id)
    assert len(creds.encoding_aes_key) == 43
    assert len(base64.b64decode(creds.encoding_aes_key + "=")) == 32
    assert creds != DemoCredentials.generate()


def test_demo_serves_the_console_with_the_seeded_company(start_demo) -> None:
    d = start_demo()
    assert d.console_url.startswith("http://127.0.0.1:") and d.console_url.endswith("/dev/")
    page = requests.get(d.console_url, timeout=5)
    assert page.status_code == 200 and "企业微信模拟器" in page.text
    assert requests.get(d.console_url + "static/console.js", timeout=5).status_code == 200
    assert requests.get(d.base_url + "/healthz", timeout=5).json()["status"] == "ok"

    cfg = load_config(d.config_path, env={})
    assert cfg.get("wecom.api_base_url") == d.base_url + "/dev/wecom/cgi-bin/"
    assert cfg.get("dev.emulator") is True
    assert cfg.get("database.url") == f"sqlite:///{d.db_path}" and cfg.get("redis.url") == ""
    assert list(cfg.get("roles.admins")) == list(DEMO_ADMINS)

    members = {m["userid"]: m for m in requests.get(d.console_url + "api/members", timeout=5).json()["members"]}
    assert set(members) == {m.userid for m in DEMO_MEMBERS}
    roles = {r for m in members.values() for r in m["roles"]}
    assert roles == {"rep", "manager", "finance", "csm", "risk", "admin"}
    assert sum("rep" in m["roles"] for m in members.values()) == 3
    # every member is in the fake WeCom directory too, so sends to them are not 81013
    state = d.app.extensions["salesbot.emulator"].state
    assert set(state.members) >= set(members)

    # the admin is a bootstrap admin and the outbox runs in-process: a card reaches the manager
    r = requests.post(d.console_url + "api/send", timeout=10,
                      json={"as": DEMO_ADMINS[0], "type": "text", "content": "主管 liuyang wanglei"}).json()
    assert r["status"] == 200 and "王磊" in r["reply"]["Content"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not state.inbox("wanglei"):
        time.sleep(0.1)
    assert state.inbox("wanglei")[-1].body["main_title"]["title"] == "团队成员确认"


def test_rerun_keeps_the_data_and_reset_starts_over(start_demo) -> None:
    d = start_demo()
    creds = load_config(d.config_path, env={}).get("wecom.token")
    r = requests.post(d.console_url + "api/send", timeout=10,
                      json={"as": "chenjing", "type": "text", "content": "姓名 lihao 李浩然"}).json()
    assert "李浩然" in r["reply"]["Content"]
    d.stop()

    again = start_demo()
    assert load_config(again.config_path, env={}).get("wecom.token") == creds  # salesbot chat keeps working
    with again.runtime.db.sessions() as s:
        assert s.scalar(select(Member.name).where(Member.userid == "lihao")) == "李浩然"
    again.stop()

    fresh = start_demo(reset=True)
    with fresh.runtime.db.sessions() as s:
        assert s.scalar(select(Member.name).where(Member.userid == "lihao")) == "李浩"


def test_chat_prints_the_passive_reply_and_the_pushes(start_demo) -> None:
    d = start_demo()
    runner = CliRunner()
    # the admin makes herself liuyang's manager: a passive reply, then the confirmation card pushed to her
    result = runner.invoke(main, ["chat", "--as", "chenjing", "--data-dir", str(d.data_dir), "--wait", "3",
                                  "主管 liuyang chenjing"], env={"SALESBOT_CONFIG": ""})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "已将 刘洋 的主管设为 陈静，已请 陈静 确认。"
    assert "--- 推送 ---" in lines
    assert "[卡片·按钮交互] 团队成员确认" in result.output
    assert "[确认] [不是我的下属]" in result.output
    # the exchange shows in the console's timeline as well
    events = requests.get(d.console_url + "api/events", timeout=5).json()["events"]
    assert any(e["type"] == "sent" and e.get("content") == "主管 liuyang chenjing" for e in events)

    # a stranger is added to the WeCom directory by messaging the app; the access request reaches the admin
    result = runner.invoke(main, ["chat", "--as", "xiaoming", "--data-dir", str(d.data_dir), "--wait", "0.5",
                                  "你好"], env={"SALESBOT_CONFIG": ""})
    assert result.exit_code == 0 and "还没有开通角色" in result.output


def test_chat_without_a_running_bot_says_so(tmp_path: Path) -> None:
    port = free_port()
    cfg = tmp_path / "c.toml"
    creds = DemoCredentials.generate()
    cfg.write_text(f'[wecom]\ncorp_id = "{creds.corp_id}"\ntoken = "{creds.token}"\n'
                   f'encoding_aes_key = "{creds.encoding_aes_key}"\nsecret = "x"\n', encoding="utf-8")
    result = CliRunner().invoke(main, ["--config", str(cfg), "chat", "--as", "liuyang",
                                       "--url", f"http://127.0.0.1:{port}", "帮助"])
    assert result.exit_code == 2 and "is `salesbot demo`" in result.output


def test_demo_command_prints_the_url_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "bot.cli", "demo", "--port", str(port), "--data-dir",
                             str(tmp_path / "d")], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "SALESBOT_CONFIG": ""})
    try:
        wait_for(f"http://127.0.0.1:{port}/dev/", 60)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0, out
    assert f"Open http://127.0.0.1:{port}/dev/" in out
    assert "seeded the demo company: 8 members" in out
    assert (tmp_path / "d" / "demo.db").is_file() and (tmp_path / "d" / "demo.toml").is_file()


# ---- as a new user would: README's command in a clean virtual environment ------------------------------

def readme_demo_command() -> str:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- demo-command -->\s*```[a-z]*\n(.+?)\n```", readme, re.S)
    assert block, "README.md must show the demo command in a code block after <!-- demo-command -->"
    command = block.group(1).strip()
    assert "salesbot demo" in command
    return command


@pytest.mark.skipif(os.environ.get("SALESBOT_SKIP_VENV_TEST") == "1", reason="SALESBOT_SKIP_VENV_TEST=1")
def test_readme_demo_command_in_a_clean_virtualenv(tmp_path: Path) -> None:
    """Copy the project, run README's command there (fresh venv, pip install from PyPI), GET /dev/."""
    project = tmp_path / "salesbot"
    shutil.copytree(REPO, project, ignore=shutil.ignore_patterns(
        ".git", ".venv", "venv", "__pycache__", "*.egg-info", "build", "salesbot-data", ".pytest_cache",
        ".ruff_cache", "*.db", "*.db-wal", "*.db-shm", "node_modules"))
    port = free_port()
    command = readme_demo_command() + f" --port {port}"
    if shutil.which("python3.11") is None:  # the README names python3.11; use this interpreter's venv module
        command = command.replace("python3.11", shlex.quote(sys.executable))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SALESBOT_", "VIRTUAL_ENV", "PYTHON"))}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(["bash", "-c", command], cwd=project, stdout=log, stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 170
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                r = requests.get(f"http://127.0.0.1:{port}/dev/", timeout=2)
                if r.status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(1)
        else:
            log.flush()
            output = (tmp_path / "demo.log").read_text(encoding="utf-8", errors="replace")[-3000:]
            pytest.fail(f"README's demo command did not serve /dev/ (exit {proc.poll()}):\n{output}")
        assert "企业微信模拟器" in r.text
        assert requests.get(f"http://127.0.0.1:{port}/dev/static/console.js", timeout=5).status_code == 200
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()
    output = (tmp_path / "demo.log").read_text(encoding="utf-8")
    assert f"Open http://127.0.0.1:{port}/dev/" in output
    assert (project / "salesbot-data" / "demo.db").is_file()
