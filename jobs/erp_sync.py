"""Pull contracts and instalments from the configured ERP API (when enabled)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from integrations.erp import fetch_rows
from jobs.imports import import_contract_rows
from jobs.registry import job

if TYPE_CHECKING:
    from bot.runtime import Runtime


@job("erp_sync", "pull contracts and instalments from the ERP API")
def erp_sync(rt: Runtime) -> str:
    settings = rt.config.section("integrations.erp")
    if not settings.get("enabled") or not settings.get("base_url"):
        return "ERP source not configured"
    report = import_contract_rows(rt, fetch_rows(settings), "erp", str(settings["base_url"]))
    return report.lines()[0]
