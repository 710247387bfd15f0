"""Who may see and change whose customers (PRODUCT.md §7)."""

from __future__ import annotations

from collections.abc import Mapping

from domain.org import team_of


def visible_owners(userid: str, roles: list[str] | None, manager_of: Mapping[str, str | None]) -> set[str] | None:
    """The owners whose customers ``userid`` may see; None means everyone's (admins).

    A rep sees their own; a manager their own and their team's, transitively.
    """
    mine = set(roles or [])
    if "admin" in mine:
        return None
    owners = {userid}
    if "manager" in mine:
        owners |= team_of(manager_of, userid)
    return owners


def may_change(userid: str, roles: list[str] | None, owner: str, manager_of: Mapping[str, str | None]) -> bool:
    """Changing follows seeing: the owner, their managers up the line, or an admin."""
    owners = visible_owners(userid, roles, manager_of)
    return owners is None or owner in owners
