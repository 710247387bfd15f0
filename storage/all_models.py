"""Imports every module that defines tables, so Base.metadata is complete (migrations, tests)."""

from storage import behaviour, copilot, incentives, models, payments, sales  # noqa: F401
