"""The test tiers hold: a unit test cannot reach a server or start a process, and only
interop tests start Node (the rules tests/conftest.py applies to every test)."""

from __future__ import annotations

import socket
import subprocess

import pytest

from tests import node_harness

pytestmark = pytest.mark.unit


def test_a_unit_test_cannot_connect_or_start_a_process():
    """Inside a unit test, a connect or a process start fails with a message naming the tier."""
    with socket.socket() as sock, pytest.raises(AssertionError, match="marked unit"):
        sock.connect(("127.0.0.1", 9))
    with pytest.raises(AssertionError, match="marked unit"):
        subprocess.run(["true"], check=False)


def test_only_interop_tests_may_start_node():
    """require_node refuses a test that is not marked interop, and names the mark to add."""
    with pytest.raises(pytest.fail.Exception, match=r"mark it @pytest.mark.interop"):
        node_harness.require_node()
