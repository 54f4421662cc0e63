"""The built-in `python` tool: the model's code runs in the stage's sandbox, it reads the output.

The code goes to the sandbox's `POST /v1/run` (the real server, through `SandboxClient`, the same
fleet and isolation that judge code rewards), with the sandbox's limits: `time_s` is the tool
call's timeout, memory and output caps are the server's defaults. What the model reads back is
what a terminal would show: stdout, then stderr under a `stderr:` line, then a last line with the
status when the program did not finish cleanly (`status: TLE`, `exit code: 1`), so a traceback or
a timeout is information the policy can act on, not an exception in the trainer. A sandbox error
(SE: no replica answered) is reported to the model the same way and counted as a tool error.
"""
from __future__ import annotations

from typing import Any

from qwqrl.tools.tool import Tool

NAME = "python"
SCHEMA = {"type": "function", "function": {
    "name": NAME,
    "description": "Run a Python 3 program and return what it prints (stdout, then stderr). "
                   "Each call starts a fresh interpreter: state does not carry over between "
                   "calls, so print what you need.",
    "parameters": {"type": "object", "required": ["code"], "properties": {
        "code": {"type": "string", "description": "The complete program to run."}}},
}}


class ToolFailed(RuntimeError):
    """The tool ran but could not do its job; the message is what the model reads."""


def python_tool(client: Any, time_s: float) -> Tool:
    """The `python` tool over `client` (a `qwqrl.sandbox.client.SandboxClient`); each program may
    use `time_s` seconds of CPU time."""

    async def python(code: str) -> str:
        result = await client.run({"language": "python", "code": code, "stdin": "",
                                   "limits": {"time_s": time_s}})
        text = format_run(result)
        if result.get("status") == "SE":
            raise ToolFailed(text)
        return text

    return Tool(NAME, SCHEMA, python)


def format_run(result: dict[str, Any]) -> str:
    """A `/v1/run` result as the model reads it (module docstring)."""
    parts = [result.get("stdout") or ""]
    if result.get("stderr"):
        parts.append(f"stderr:\n{result['stderr']}")
    status, code = result.get("status", "SE"), result.get("exit_code")
    if status == "SE":
        parts.append(f"status: SE (sandbox error: {result.get('error', 'no detail')})")
    elif status != "OK":
        parts.append(f"status: {status}")
    elif code not in (0, None):
        parts.append(f"exit code: {code}")
    return "\n".join(p.rstrip("\n") for p in parts if p)
