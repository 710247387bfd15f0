"""Imports every module that defines tables, so Base.metadata is complete (migrations, tests)."""

from storage import behaviour, models, sales  # noqa: F401
