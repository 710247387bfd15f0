"""WSGI entry for gunicorn: ``gunicorn -w 4 'bot.wsgi:app'`` (config from $SALESBOT_CONFIG)."""

from bot.app import create_app
from bot.config import load_config
from bot.logs import setup_logging

_config = load_config()
setup_logging(_config.get("log.level"), _config.get("log.json"))
app = create_app(_config)
