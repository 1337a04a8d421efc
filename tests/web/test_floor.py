"""The HTTP floor and the CLI are wired at the root: one template environment, a console
navigation the root fills per app, and domain CLIs that take the process's services."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import dropline
from dropline.web import templating
from dropline.web.app import console_navigation, create_app
from dropline.web.navigation import Navigation, NavItem

PACKAGE = Path(dropline.__file__).parent
PAGE_MODULES = sorted(f"dropline.{p.parent.name}.pages" for p in PACKAGE.glob("*/pages.py"))
CLI_FILES = sorted([*PACKAGE.glob("*/cli.py"), PACKAGE / "telemetry" / "shop_cli.py",
                    PACKAGE / "cli_support.py"])
# What only the composition root builds.
ROOT_ONLY = {"get_settings", "Settings", "Database", "SystemClock", "LocalCardProvider",
             "PyVRPSolver", "LondonDistrictGeocoder", "sender_for", "Jinja2Templates"}


def _calls(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Call):
            func = node.func
            names.add(func.id if isinstance(func, ast.Name) else getattr(func, "attr", ""))
    return names


@pytest.mark.parametrize("module", PAGE_MODULES)
def test_every_page_module_renders_with_the_one_template_environment(module):
    pages = importlib.import_module(module)

    assert "Jinja2Templates" not in _calls(Path(pages.__file__))
    assert getattr(pages, "templates", templating.templates) is templating.templates


def test_only_the_floor_builds_a_template_environment():
    """Pages have one environment (the floor's); mail has its own, because its text bodies
    must not be HTML-escaped and a missing value must fail rather than print nothing."""
    builders = sorted(p.relative_to(PACKAGE) for p in PACKAGE.rglob("*.py")
                      if {"Jinja2Templates", "Environment"} & _calls(p))

    assert builders == [Path("notifications/render.py"), Path("web/templating.py")]


def test_the_environment_finds_each_domains_templates_and_has_the_filters():
    env = templating.templates.env

    for name in ("console/drops.html", "route_sheet.html", "membership.html", "planning.html",
                 "popups/counter.html", "risk/queue.html", "telemetry.html", "admin/base.html"):
        assert env.get_template(name) is not None
    assert {"money", "local"} <= set(env.filters)
    assert env.from_string("{{ 123456 | money }} {{ -150 | money('EUR') }}").render() == \
        "£1,234.56 -€1.50"


@pytest.mark.parametrize("path", CLI_FILES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_domain_clis_take_the_process_services_from_the_root(path):
    assert not ROOT_ONLY & _calls(path)


def test_console_navigation_is_filled_by_the_root_per_app(settings, db, clock):
    first = create_app(settings, clock=clock, db=db, run_worker=False)
    second = create_app(settings, clock=clock, db=db, run_worker=False)

    paths = [item.path for item in first.state.navigation]
    assert paths[0] == "/admin" and len(paths) == len(set(paths))
    assert {"/admin/drops", "/admin/popups", "/admin/memberships/cohort-map",
            "/admin/telemetry", "/admin/planning", "/admin/risk", "/admin/audit",
            "/admin/playbooks", "/admin/checklist"} <= set(paths)
    assert first.state.navigation is not second.state.navigation
    assert [i.path for i in console_navigation()] == paths  # importing registered nothing


def test_the_navigation_keeps_the_first_entry_for_a_path():
    nav = Navigation([NavItem("Risk", "/admin/risk")])
    nav.add(NavItem("Risk (not built)", "/admin/risk"), NavItem("Audit", "/admin/audit"))

    assert [(i.label, i.path) for i in nav] == [("Risk", "/admin/risk"),
                                                ("Audit", "/admin/audit")]
