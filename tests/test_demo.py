"""The README's demo command works: separate uvicorn processes share rooms over Redis."""

from __future__ import annotations

import subprocess
import sys


def test_demo_cluster_runs(tmp_path):
    """The demo's cross-process broadcast and room message arrive, and it exits 0."""
    out = subprocess.run(
        [sys.executable, "-m", "socketio_redis_async", "demo"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,  # not the checkout: python -m would import the source tree
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "carol  (on port" in out.stdout and "got chat" in out.stdout
    assert "only bob and carol got the room message" in out.stdout
