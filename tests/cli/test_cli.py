"""The CLI: every command explains itself; errors are one readable line and exit code 2."""

import pytest
from typer.testing import CliRunner

from dropline.cli import app

runner = CliRunner()


def test_help_lists_the_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "migrate", "demo", "worker", "admin", "webhooks"):
        assert command in result.output


@pytest.mark.parametrize("command", [["serve"], ["migrate"], ["demo"], ["worker"],
                                     ["admin", "token"], ["webhooks", "add"],
                                     ["payments", "reconcile"], ["drops", "reconcile"]])
def test_every_command_documents_its_options_with_an_example(command):
    result = runner.invoke(app, [*command, "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "Example: dropline" in result.output


def test_serve_help_documents_host_port_and_workers():
    output = runner.invoke(app, ["serve", "--help"], terminal_width=200).output
    assert "--host" in output and "--port" in output and "--workers" in output


def test_migrate_then_issue_a_token_then_refuse_an_unknown_scope(tmp_path, monkeypatch):
    monkeypatch.setenv("DROPLINE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")

    migrated = runner.invoke(app, ["migrate"])
    issued = runner.invoke(app, ["admin", "token", "ci", "--scope", "orders:read"])
    refused = runner.invoke(app, ["admin", "token", "ci", "--scope", "orders:everything"])

    assert migrated.exit_code == 0 and "revision" in migrated.output
    assert issued.exit_code == 0 and "dl_" in issued.output
    assert refused.exit_code == 2
    assert "unknown scope" in refused.output and "Traceback" not in refused.output
