from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.payments.localstripe_server import run_localstripe


@pytest.fixture(scope="session")
def localstripe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A localstripe server for this test session: its base URL."""
    with run_localstripe(tmp_path_factory.mktemp("localstripe") / "server.log") as url:
        yield url
