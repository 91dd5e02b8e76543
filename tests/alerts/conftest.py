from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.alerts.recorder import Recorder


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    yield server
    server.close()
