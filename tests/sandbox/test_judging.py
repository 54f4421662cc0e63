"""Verdicts and rewards through the real server, plus the pure comparison rules."""
from __future__ import annotations

import json

import pytest

from qwqrl.sandbox.judge import harness_line, stdio_matches, values_match

from .conftest import Server, needs_gxx

DOUBLE = {"type": "stdio", "cases": [{"input": "2\n", "output": "4\n"}, {"input": "5\n", "output": "10\n"}]}


@pytest.mark.parametrize("got, want, tol, ok", [
    ("4\n", "4", None, True),
    ("4   \r\n\n\n", "4\n", None, True),           # trailing whitespace and blank lines
    ("4\n5\n", "4\n", None, False),                 # an extra line
    ("4\n", "4\n5\n", None, False),                 # a missing line
    (" 4\n", "4\n", None, False),                   # leading whitespace counts
    ("0.3333334\n", "0.333333\n", 1e-5, True),
    ("0.34\n", "0.333333\n", 1e-5, False),
    ("0.3333334\n", "0.333333\n", None, False),
])
def test_stdio_comparison_rules(got: str, want: str, tol: float | None, ok: bool) -> None:
    assert stdio_matches(got, want, tol) is ok


@pytest.mark.parametrize("got, want, tol, ok", [
    ([1, 2], [1, 2], None, True), (1, 1.0, None, True), (True, 1, None, False),
    ({"a": [1]}, {"a": [1]}, None, True), ("1", 1, None, False), (0.1 + 0.2, 0.3, 1e-9, True),
    (0.1 + 0.2, 0.3, None, False), ([1], [1, 2], None, False),
])
def test_call_values_compare_as_json_values(got: object, want: object, tol: float | None, ok: bool) -> None:
    assert values_match(got, want, tol) is ok


def test_harness_line_is_the_last_one_with_the_nonce() -> None:
    assert harness_line("out\nN[1]\nmore\nN[2]\n", "N") == "[2]"
    assert harness_line("[2]\n", "N") is None


def test_stdio_reward_is_the_fraction_passed(server: Server) -> None:
    good = server.evaluate("print(int(input()) * 2)", DOUBLE)
    assert (good["status"], good["passed"], good["total"], good["reward"]) == ("OK", 2, 2, 1.0)
    half = server.evaluate("n = int(input())\nprint(4 if n == 2 else 0)", DOUBLE)
    assert (half["status"], half["passed"], half["reward"]) == ("WA", 1, 0.5)
    assert [c["status"] for c in half["cases"]] == ["OK", "WA"]


def test_all_or_nothing_and_stop_on_first_fail(server: Server) -> None:
    code = "n = int(input())\nprint(0 if n == 2 else 10)"
    strict = server.evaluate(code, DOUBLE, all_or_nothing=True)
    assert strict["passed"] == 1 and strict["reward"] == 0.0
    stopped = server.evaluate(code, DOUBLE, stop_on_first_fail=True)
    assert stopped["total"] == 2 and len(stopped["cases"]) == 1 and stopped["reward"] == 0.0


def test_python_syntax_error_is_ce(server: Server) -> None:
    result = server.evaluate("print(", DOUBLE)
    assert result["status"] == "CE" and result["reward"] == 0.0 and result["total"] == 2
    assert "SyntaxError" in result["cases"][0]["message"]


def test_runtime_error_is_re(server: Server) -> None:
    result = server.evaluate("raise ValueError('boom')", DOUBLE)
    assert result["status"] == "RE" and "boom" in result["cases"][0]["message"]


def test_nonzero_exit_is_re_and_exit_zero_is_judged_on_output(server: Server) -> None:
    assert server.evaluate("import sys\nprint(4)\nsys.exit(3)", DOUBLE)["cases"][0]["status"] == "RE"
    assert server.evaluate("import sys\nprint(int(input()) * 2)\nsys.exit(0)", DOUBLE)["status"] == "OK"


@needs_gxx
def test_cpp_is_compiled_once_and_run_per_test(server: Server) -> None:
    code = "#include <iostream>\nint main(){ long long n; std::cin >> n; std::cout << 2 * n << std::endl; }\n"
    result = server.evaluate(code, DOUBLE, language="cpp")
    assert (result["status"], result["reward"]) == ("OK", 1.0)
    broken = server.evaluate("int main( {", DOUBLE, language="cpp")
    assert broken["status"] == "CE" and "error" in broken["cases"][0]["message"]
    crash = server.evaluate("int main(){ int *p = nullptr; return *p; }", DOUBLE, language="cpp")
    assert crash["status"] == "RE"


def test_call_tests_compare_returned_values(server: Server) -> None:
    tests = {"type": "call", "fn_name": "pair", "cases": [{"args": [1, 2], "expected": [1, 2]},
                                                          {"args": [3, 4], "expected": [4, 3]}]}
    result = server.evaluate("def pair(a, b):\n    return (a, b)", tests)
    assert [c["status"] for c in result["cases"]] == ["OK", "WA"]


def test_call_tests_reach_leetcode_solution_methods(server: Server) -> None:
    tests = {"type": "call", "fn_name": "twoSum", "cases": [{"args": [[2, 7, 11], 9], "expected": [0, 1]}]}
    code = ("class Solution:\n    def twoSum(self, nums, target):\n        seen = {}\n"
            "        for i, x in enumerate(nums):\n            if target - x in seen:\n"
            "                return [seen[target - x], i]\n            seen[x] = i\n")
    assert server.evaluate(code, tests)["status"] == "OK"


def test_assert_tests_count_each_assert(server: Server) -> None:
    tests = {"type": "assert", "asserts": ["assert add(1, 2) == 3", "assert add(2, 2) == 5", "assert add(0, 0) == 0"]}
    result = server.evaluate("def add(a, b):\n    return a + b", tests)
    assert result["passed"] == 2 and result["total"] == 3 and [c["status"] for c in result["cases"]] == ["OK", "WA", "OK"]


def test_apps_input_output_form_is_accepted_as_a_json_string(server: Server) -> None:
    io = json.dumps({"inputs": ["2\n", ["5"]], "outputs": ["4\n", ["10"]]})
    result = server.evaluate("print(int(input()) * 2)", io)
    assert (result["status"], result["passed"]) == ("OK", 2)
    call = {"inputs": [[1, 2]], "outputs": [[3]], "fn_name": "add"}  # TACO wraps the value in a list
    assert server.evaluate("def add(a, b):\n    return a + b", call)["status"] == "OK"


def test_run_endpoint_returns_output_and_usage(server: Server) -> None:
    result = server.run("import sys\nprint(input()[::-1])\nprint('warn', file=sys.stderr)", stdin="abc\n")
    assert result["status"] == "OK" and result["exit_code"] == 0
    assert result["stdout"] == "cba\n" and result["stderr"] == "warn\n"
    assert result["cpu_ms"] >= 0 and result["wall_ms"] > 0 and result["max_rss_mb"] > 0
