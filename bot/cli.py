"""The ``salesbot`` console script."""

from __future__ import annotations

import gc
import os
import signal
import sys
import threading
from typing import Any

import click

from bot.config import Config, ConfigError, example_toml, load_config


def _config(ctx: click.Context) -> Config:
    obj: dict[str, Any] = ctx.ensure_object(dict)
    if "config" not in obj:
        try:
            obj["config"] = load_config(obj.get("config_path"))
        except ConfigError as exc:
            click.echo(str(exc), err=True)
            sys.exit(2)
        from bot.logs import setup_logging

        setup_logging(obj["config"].get("log.level"), obj["config"].get("log.json"))
    return obj["config"]  # type: ignore[no-any-return]


def _require_wecom(cfg: Config) -> None:
    for key in ("wecom.corp_id", "wecom.token", "wecom.encoding_aes_key", "wecom.secret"):
        if not cfg.get(key):
            click.echo(ConfigError(key, "required to talk to WeCom (set it in the config file or "
                                        f"SALESBOT_{key.replace('.', '_').upper()})").args[0], err=True)
            sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(dir_okay=False), default=None,
              help="TOML config file (default: $SALESBOT_CONFIG, else built-in defaults).")
@click.pass_context
def main(ctx: click.Context, config_path: str | None) -> None:
    """salesbot: a WeCom bot for a B2B sales team's daily discipline."""
    ctx.ensure_object(dict)["config_path"] = config_path


@main.command()
@click.pass_context
def serve(ctx: click.Context) -> None:
    """Run the web app (callback, tracked links, webhooks, health). Production: gunicorn 'bot.wsgi:app'."""
    cfg = _config(ctx)
    _require_wecom(cfg)
    from bot.app import create_app

    app = create_app(cfg)
    gc.freeze()  # as bot/wsgi.py does: what building the app allocated is left out of every full collection
    click.echo(f"salesbot serving on http://{cfg.get('server.host')}:{cfg.get('server.port')}/")
    app.run(host=cfg.get("server.host"), port=cfg.get("server.port"), threaded=True)


@main.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run the scheduler and the outbox delivery until stopped (SIGINT/SIGTERM)."""
    cfg = _config(ctx)
    _require_wecom(cfg)
    from bot.app import load_handlers
    from bot.outbox import Deliverer
    from bot.runtime import build_runtime
    from jobs.scheduler import build_scheduler

    load_handlers()
    rt = build_runtime(cfg)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sched = build_scheduler(rt)
    sched.start()
    click.echo(f"salesbot worker: {len(sched.get_jobs())} scheduled jobs, outbox delivery running")
    try:
        Deliverer(rt).run_forever(stop)
    finally:
        sched.shutdown(wait=False)


@main.command()
@click.option("--port", type=int, default=8000, show_default=True, help="Port to serve on (0: any free port).")
@click.option("--data-dir", type=click.Path(file_okay=False), default="salesbot-data", show_default=True,
              help="Where the demo keeps demo.db and its generated demo.toml.")
@click.option("--reset", is_flag=True, help="Start over: delete the demo database and seed it again.")
def demo(port: int, data_dir: str, reset: bool) -> None:
    """Everything in one process with the WeCom emulator: open the printed URL and chat as any member.

    SQLite file + in-process Redis, the outbox and the scheduler in background threads, seeded with a
    demo company. Re-running keeps the data unless --reset.
    """
    from bot.demo import Demo

    d = Demo(data_dir, port=port, reset=reset, echo=click.echo, configure_logging=True)
    try:
        url = d.start()
    except OSError as exc:
        click.echo(f"cannot listen on port {port}: {exc.strerror or exc} (try --port)", err=True)
        sys.exit(2)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: d.stopping.set())
    click.echo(f"config: {d.config_path} (for `salesbot chat`)")
    click.echo(f"salesbot demo is running. Open {url}  （在浏览器中打开，选择成员开始聊天）")
    click.echo("Press Ctrl+C to stop.")
    try:
        d.wait()
    finally:
        d.stop()


@main.command()
@click.option("--as", "userid", required=True, help="The member (WeCom userid) who sends the message.")
@click.option("--url", default=None, help="The running bot [default: server.public_base_url of the config].")
@click.option("--wait", type=float, default=3.0, show_default=True,
              help="Seconds to wait for messages pushed to the member.")
@click.option("--data-dir", type=click.Path(file_okay=False), default="salesbot-data", show_default=True,
              help="Without --config, read the demo's generated demo.toml from here.")
@click.argument("text")
@click.pass_context
def chat(ctx: click.Context, userid: str, url: str | None, wait: float, data_dir: str, text: str) -> None:
    """Send TEXT as a member through the real (encrypted) callback; print the reply and the pushes."""
    from pathlib import Path

    from bot.demo import CONFIG_NAME
    from bot.demo import chat as run_chat

    obj = ctx.ensure_object(dict)
    demo_toml = Path(data_dir) / CONFIG_NAME
    if not obj.get("config_path") and not os.environ.get("SALESBOT_CONFIG") and demo_toml.is_file():
        obj["config_path"] = str(demo_toml)
    cfg = _config(ctx)
    sys.exit(run_chat(cfg, url or cfg.get("server.public_base_url"), userid, text, wait, click.echo))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@click.pass_context
def db_upgrade(ctx: click.Context, revision: str) -> None:
    """Apply Alembic migrations to the configured database."""
    cfg = _config(ctx.find_root())
    from storage.migrate import upgrade

    upgrade(cfg.get("database.url"), revision)
    click.echo(f"database at {revision}")


@main.group()
def jobs() -> None:
    """Scheduled jobs."""


@jobs.command("list")
@click.pass_context
def jobs_list(ctx: click.Context) -> None:
    """List jobs with their schedule and whether they are enabled."""
    cfg = _config(ctx.find_root())
    from jobs.registry import load_jobs

    for name, job in sorted(load_jobs().items()):
        s = cfg.section(f"scheduler.jobs.{name}")
        when = s.get("cron") or (f"every {s.get('interval_s')} s" if s.get("interval_s") else "not scheduled")
        state = "enabled" if s.get("enabled") else "disabled"
        click.echo(f"{name:<24} {when:<20} {state:<9} {job.doc}")


@jobs.command("run")
@click.argument("name")
@click.pass_context
def jobs_run(ctx: click.Context, name: str) -> None:
    """Run one job now (once, whatever its schedule)."""
    cfg = _config(ctx.find_root())
    import uuid

    from bot.app import load_handlers
    from bot.runtime import build_runtime
    from jobs.registry import load_jobs
    from jobs.scheduler import run_job

    registry = load_jobs()
    if name not in registry:
        click.echo(f"unknown job {name!r}; known: {', '.join(sorted(registry))}", err=True)
        sys.exit(2)
    load_handlers()
    rt = build_runtime(cfg)
    summary = run_job(rt, registry[name], f"manual-{uuid.uuid4().hex}")
    if summary is None:
        click.echo(f"{name}: failed (see the log)", err=True)
        sys.exit(1)
    click.echo(f"{name}: {summary}")


@main.command("import")
@click.argument("kind", type=click.Choice(["bank", "contracts", "erp"]))
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def import_file(ctx: click.Context, kind: str, file: str) -> None:
    """Import a CSV/XLSX file: bank statements, contracts, or an ERP export of contracts and instalments.

    Re-running the same file changes nothing; the report lists imported, updated, rejected (with row
    number and reason) and conflicting rows."""
    cfg = _config(ctx)
    from bot.app import load_handlers
    from bot.runtime import build_runtime
    from integrations.tabular import TabularError
    from jobs.imports import import_bank_file, import_contracts_file

    load_handlers()
    rt = build_runtime(cfg)
    click.echo(f"importing {kind} from {file} …")
    try:
        if kind == "bank":
            report = import_bank_file(rt, file)
        else:
            report = import_contracts_file(rt, file, "erp" if kind == "erp" else "import")
    except TabularError as exc:
        click.echo(f"cannot import: {exc}", err=True)
        sys.exit(2)
    for line in report.lines():
        click.echo(line)


@main.group("config")
def config_group() -> None:
    """Configuration."""


@config_group.command("example")
def config_example() -> None:
    """Print the documented example configuration (every key with its default)."""
    click.echo(example_toml(), nl=False)


@config_group.command("check")
@click.pass_context
def config_check(ctx: click.Context) -> None:
    """Validate the configuration and print it with secrets masked."""
    cfg = _config(ctx.find_root())
    for key, value in sorted(cfg.redacted().items()):
        click.echo(f"{key} = {value!r}")


if __name__ == "__main__":
    main()
