"""WSGI entry for gunicorn: ``gunicorn -w 4 -k gthread --threads 4 --keep-alive 0 'bot.wsgi:app'`` (config from
$SALESBOT_CONFIG; README "Running it", bench/README.md for the flags)."""

import gc

from bot.app import create_app
from bot.config import load_config
from bot.logs import setup_logging

_config = load_config()
setup_logging(_config.get("log.level"), _config.get("log.json"))
app = create_app(_config)

# What importing and building the app allocated (~190k objects: Flask, SQLAlchemy, wechatpy, the handlers) lives
# as long as the process; frozen out of the cyclic collector, a full collection no longer walks it. Each full
# collection stopped every thread of the worker for 65–110 ms (measured under the callback benchmark's load),
# the requests in flight with it; frozen, 1–4 ms.
gc.freeze()
