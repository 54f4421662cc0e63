"""The built-in python tool against the real sandbox server (HTTP on loopback)."""
from __future__ import annotations

import pytest

from qwqrl.sandbox.client import SandboxClient
from qwqrl.sandbox.local import LocalSandbox
from qwqrl.tools import Toolset, python_tool


@pytest.fixture(scope="module")
def sandbox():
    with LocalSandbox(workers=1) as box:
        yield SandboxClient([box.url])


def test_python_runs_in_the_sandbox_and_reports_output_and_status(sandbox) -> None:
    tools = Toolset([python_tool(sandbox, time_s=2.0)], timeout_s=20, sandbox=sandbox)
    [[ok], [crash]] = tools.run_calls([
        [{"name": "python", "arguments": {"code": "print(123456789 * 987654321)"}}],
        [{"name": "python", "arguments": {"code": "import sys\nprint('hi')\nsys.exit('bad')"}}]])
    assert ok.text == str(123456789 * 987654321) and not ok.error
    assert crash.text.startswith("hi\nstderr:\nbad") and "status: RE" in crash.text
    assert not crash.error  # the program failed, the tool did its job
