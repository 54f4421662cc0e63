"""The tools of one RL stage, and how a batch of calls is executed.

Built from the recipe's `tools:` section (`Toolset.from_config`): the built-in `python` tool
when `python: true` (in the stage's sandbox), then each `functions` entry, `"pkg.module:fn"`,
made a tool by `function_tool`. The schemas go to the chat template (`tools=`), which shows them
to the model in the system turn.

Execution never raises: every call of a step runs concurrently (`run_calls`), each under
`timeout_s`, and an unknown tool, bad arguments, an exception, a timeout or a malformed
`<tool_call>` block all come back as a `ToolResult` with `error=True` and a text the model can
read (`error: ...`). A rollout step therefore survives any tool; the errors are counted in the
metrics. Sync functions run in the toolset's own threads (a thread that overruns its timeout is abandoned,
not killed or waited for: Python cannot stop a thread, so a tool that may hang should be async
or bound its own work); async functions are cancelled at the timeout.

Results longer than `max_response_chars` are cut (with a note saying so): the response tokens
count against the completion's token budget, and one runaway print must not eat all of it.
"""
from __future__ import annotations

import asyncio
import functools
import importlib
import inspect
import json
from collections.abc import Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from qwqrl.tools.python_tool import python_tool
from qwqrl.tools.tool import Tool, function_tool

SYNC_WORKERS = 32  # sync tool calls running at once; more wait for a free thread


@dataclass(frozen=True)
class ToolResult:
    """What one call returned, as the model reads it; error: the call failed."""
    text: str
    error: bool = False


def import_function(path: str) -> Any:
    """The object at `"pkg.module:attr"` (ValueError saying what failed)."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"{path!r}: expected an import path 'package.module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise ValueError(f"{path!r}: cannot import module {module_name!r} ({e})") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"{path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise ValueError(f"{path!r}: {attr!r} is not callable")
    return obj


class Toolset:
    """Tools by name, and their concurrent, timed-out execution."""

    def __init__(self, tools: Sequence[Tool], timeout_s: float = 10.0,
                 max_response_chars: int = 4000, sandbox: Any = None) -> None:
        names = [t.name for t in tools]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"tool names must be unique; repeated: {twice}")
        self.tools = {t.name: t for t in tools}
        self.timeout_s, self.max_response_chars = timeout_s, max_response_chars
        self.sandbox = sandbox  # closed after each batch: its HTTP client is bound to the loop
        # Sync tools run here, not in the event loop's default executor, which `asyncio.run`
        # joins on exit: a thread that overran its timeout would hold the whole step.
        self._threads = ThreadPoolExecutor(max_workers=SYNC_WORKERS, thread_name_prefix="qwqrl-tool")

    @classmethod
    def from_config(cls, cfg: Any, sandbox: Any = None) -> Toolset:
        """The stage's tools (`qwqrl.config.ToolsConfig`); `sandbox` is required for `python`."""
        tools = []
        if cfg.python:
            if sandbox is None:
                raise ValueError("tools.python needs a sandbox client")
            tools.append(python_tool(sandbox, cfg.timeout_s))
        tools += [function_tool(import_function(path)) for path in cfg.functions]
        return cls(tools, cfg.timeout_s, cfg.max_response_chars, sandbox if cfg.python else None)

    @property
    def schemas(self) -> list[dict[str, Any]]:
        """The OpenAI function schemas, for the chat template's `tools=`."""
        return [t.schema for t in self.tools.values()]

    def run_calls(self, calls: list[list[dict[str, Any] | str]]) -> list[list[ToolResult]]:
        """Execute every sample's calls concurrently; results in the same nesting and order.

        Each call is `{"name", "arguments"}` as `verifiers.tool_call.parse_calls` returns them,
        or a string: the reason a block could not be parsed, answered as an error.
        """
        async def everything() -> list[list[ToolResult]]:
            try:
                flat = await asyncio.gather(*(self.call(c) for sample in calls for c in sample))
            finally:
                if self.sandbox is not None:
                    await self.sandbox.aclose()
            it = iter(flat)
            return [[next(it) for _ in sample] for sample in calls]

        return run_sync(everything())

    async def call(self, call: dict[str, Any] | str) -> ToolResult:
        """One call under the timeout; never raises (module docstring)."""
        if isinstance(call, str):
            return ToolResult(f"error: malformed tool call: {call}", error=True)
        tool = self.tools.get(call["name"])
        if tool is None:
            return ToolResult(f"error: unknown tool {call['name']!r}; available: "
                              f"{', '.join(self.tools) or 'none'}", error=True)
        try:
            value = await asyncio.wait_for(self._invoke(tool, call["arguments"]), self.timeout_s)
        except asyncio.TimeoutError:
            return ToolResult(f"error: tool {tool.name!r} timed out after {self.timeout_s:g} s", error=True)
        except Exception as e:  # noqa: BLE001 - any tool failure is text for the model
            return ToolResult(self._cut(f"error: {type(e).__name__}: {e}"), error=True)
        return ToolResult(self._cut(value if isinstance(value, str) else json.dumps(value, default=str)))

    async def _invoke(self, tool: Tool, arguments: dict[str, Any]) -> Any:
        inspect.signature(tool.fn).bind(**arguments)  # TypeError naming the bad argument
        if inspect.iscoroutinefunction(tool.fn):
            return await tool.fn(**arguments)
        return await asyncio.get_running_loop().run_in_executor(
            self._threads, functools.partial(tool.fn, **arguments))

    def _cut(self, text: str) -> str:
        if len(text) <= self.max_response_chars:
            return text
        return text[:self.max_response_chars] + f"\n[... cut: {len(text)} characters in all]"


def run_sync(coro: Coroutine[Any, Any, Any]) -> Any:
    """`asyncio.run(coro)`, also from a thread that already runs an event loop (then in a new
    thread), so the synchronous trainer and an async caller can both use a `Toolset`."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
