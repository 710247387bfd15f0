"""The reporting line: who manages whom, transitively."""

from __future__ import annotations

from collections.abc import Mapping


def would_loop(manager_of: Mapping[str, str | None], member: str, new_manager: str) -> bool:
    """True when making ``new_manager`` the manager of ``member`` closes a cycle."""
    seen: set[str] = set()
    current: str | None = new_manager
    while current is not None and current not in seen:
        if current == member:
            return True
        seen.add(current)
        current = manager_of.get(current)
    return False


def direct_reports(manager_of: Mapping[str, str | None]) -> dict[str, list[str]]:
    """Each manager's direct reports."""
    reports: dict[str, list[str]] = {}
    for m, boss in manager_of.items():
        if boss:
            reports.setdefault(boss, []).append(m)
    return reports


def team_of(manager_of: Mapping[str, str | None], manager: str,
            reports: Mapping[str, list[str]] | None = None) -> set[str]:
    """Everyone who reports to ``manager`` directly or through others (not the manager). ``reports``
    (``direct_reports(manager_of)``) saves working them out again when asked for many managers."""
    if reports is None:
        reports = direct_reports(manager_of)
    team: set[str] = set()
    stack = list(reports.get(manager, []))
    while stack:
        m = stack.pop()
        if m not in team and m != manager:
            team.add(m)
            stack.extend(reports.get(m, []))
    return team
