"""Tool schemas derived from Python functions, and the toolset's execution rules: every failure
(timeout, exception, bad arguments, unknown tool, malformed block) becomes text for the model."""
from __future__ import annotations

import threading
from typing import Literal

import pytest

from qwqrl.config import ToolsConfig
from qwqrl.tools import Tool, Toolset, function_tool, import_function
from qwqrl.tools.multi_turn import calls_of


def search(query: str, limit: int = 5, tags: list[str] | None = None,
           unit: Literal["c", "f"] = "c", scale: float = 1.0, exact: bool = False) -> list:
    """Search the index for documents.

    Longer explanation that is not the summary.

    Args:
        query: what to look for,
            possibly over two lines.
        limit (int): how many results.
        tags: only documents with these tags.

    Returns:
        the hits.
    """
    return []


def test_schema_from_signature_and_docstring() -> None:
    fn = function_tool(search).schema["function"]
    assert fn["name"] == "search" and fn["description"] == "Search the index for documents."
    props = fn["parameters"]["properties"]
    assert props["query"] == {"type": "string", "description": "what to look for, possibly over two lines."}
    assert props["limit"] == {"type": "integer", "description": "how many results."}
    assert props["tags"] == {"type": "array", "items": {"type": "string"},
                             "description": "only documents with these tags."}
    assert props["unit"] == {"enum": ["c", "f"]}
    assert props["scale"] == {"type": "number"} and props["exact"] == {"type": "boolean"}
    assert fn["parameters"]["required"] == ["query"]


def test_a_schema_the_json_cannot_express_is_refused_naming_the_parameter() -> None:
    def varargs(*xs: int) -> int:
        return 0

    def odd(x: complex) -> int:
        return 0

    with pytest.raises(ValueError, match="'xs'.*args"):
        function_tool(varargs)
    with pytest.raises(ValueError, match="'x'.*complex"):
        function_tool(odd)


def test_recipe_functions_are_checked_at_load() -> None:
    ok = ToolsConfig.model_validate({"functions": ["tests.tools.test_tool:search"]})
    assert ok.max_turns == 4 and not ok.python
    with pytest.raises(ValueError, match=r"functions\[0\].*no attribute 'nope'"):
        ToolsConfig.model_validate({"functions": ["tests.tools.test_tool:nope"]})
    with pytest.raises(ValueError, match="package.module:function"):
        ToolsConfig.model_validate({"functions": ["just_a_name"]})
    with pytest.raises(ValueError, match="gives no tool"):
        ToolsConfig.model_validate({})
    assert import_function("tests.tools.test_tool:search").__doc__ == search.__doc__


def run_one(toolset: Toolset, call) -> str:
    [[result]] = toolset.run_calls([[call]])
    return result


def test_exceptions_timeouts_and_bad_calls_come_back_as_error_text() -> None:
    release = threading.Event()

    def boom(x: int) -> int:
        """Fail."""
        raise KeyError("missing")

    finished = threading.Event()

    def hang() -> str:
        """Never answers in time."""
        release.wait(30)
        finished.set()
        return "late"

    tools = Toolset([function_tool(boom), function_tool(hang)], timeout_s=0.2)
    try:
        r = run_one(tools, {"name": "boom", "arguments": {"x": 1}})
        assert r.error and r.text == "error: KeyError: 'missing'"
        r = run_one(tools, {"name": "hang", "arguments": {}})
        assert r.error and "timed out after 0.2 s" in r.text
        assert not finished.is_set()  # the step went on without waiting for the thread
    finally:
        release.set()
    r = run_one(tools, {"name": "boom", "arguments": {"x": 1, "y": 1}})
    assert r.error and "unexpected keyword argument 'y'" in r.text
    r = run_one(tools, {"name": "nope", "arguments": {}})
    assert r.error and "unknown tool 'nope'; available: boom, hang" in r.text


def test_malformed_call_blocks_are_answered_not_raised() -> None:
    calls = calls_of('<think>\nhm</think>\n<tool_call>\n{"name": "f", "arguments": 3}\n</tool_call>')
    assert len(calls) == 1 and isinstance(calls[0], str)
    r = run_one(Toolset([function_tool(search)]), calls[0])
    assert r.error and r.text.startswith("error: malformed tool call: call 1: expected")
    # a call inside the reasoning of a turn with no `</think>` is still a call
    assert calls_of('<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>') == [
        {"name": "f", "arguments": {}}]


def test_calls_of_a_step_run_concurrently_and_results_keep_their_order() -> None:
    meet = threading.Barrier(2, timeout=5)  # passes only if both calls run at once

    def echo(x: int) -> dict:
        """Echo."""
        meet.wait()
        return {"x": x}

    [[a], [b]] = Toolset([function_tool(echo)], timeout_s=10).run_calls(
        [[{"name": "echo", "arguments": {"x": 1}}], [{"name": "echo", "arguments": {"x": 2}}]])
    assert (a.text, b.text, a.error, b.error) == ('{"x": 1}', '{"x": 2}', False, False)


def test_long_results_are_cut_with_a_note() -> None:
    def big() -> str:
        """Lots."""
        return "x" * 100

    r = run_one(Toolset([function_tool(big)], max_response_chars=10), {"name": "big", "arguments": {}})
    assert r.text == "x" * 10 + "\n[... cut: 100 characters in all]"


def test_tool_names_are_unique_and_schemas_must_name_the_tool() -> None:
    with pytest.raises(ValueError, match="repeated"):
        Toolset([function_tool(search), function_tool(search)])
    with pytest.raises(ValueError, match="schema must be"):
        Tool("a", {"type": "function", "function": {"name": "b"}}, search)
