"""A playground server on 127.0.0.1 with an ephemeral port, one per test."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from chainrule.playground.server import PlaygroundServer, make_server


@pytest.fixture
def server(tmp_path) -> Iterator[PlaygroundServer]:
    srv = make_server("127.0.0.1", 0, export_dir=tmp_path / "runs", idle_s=2.0)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.stop()
    thread.join(5)
