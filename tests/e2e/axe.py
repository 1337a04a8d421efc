"""axe-core accessibility checks for the browser tests (the axe-core build bundled with
``axe-playwright-python``, so nothing is fetched at test time).

``assert_accessible(page, "product page")`` runs every axe rule on the page as it stands and
fails with one line per violation (rule, impact, the first offending elements)."""

from __future__ import annotations

from typing import Any

from axe_playwright_python.sync_playwright import Axe

__all__ = ["assert_accessible", "violations"]

_AXE = Axe()


def violations(page: Any) -> list[dict[str, Any]]:
    """The page's axe violations (each a dict with ``id``, ``impact``, ``help``, ``nodes``)."""
    return list(_AXE.run(page).response["violations"])


def assert_accessible(page: Any, what: str) -> None:
    found = violations(page)
    lines = []
    for violation in found:
        targets = ", ".join(str(node["target"]) for node in violation["nodes"][:3])
        lines.append(f"  {violation['id']} ({violation['impact']}): {violation['help']} "
                     f"-- {len(violation['nodes'])} element(s), e.g. {targets}")
    assert not found, f"axe found {len(found)} violation(s) on {what}:\n" + "\n".join(lines)
