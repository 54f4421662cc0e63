"""Code records: the code verifier's glue to the sandbox, on its own and inside `qwqrl score`."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psutil
import pytest

local = pytest.importorskip("qwqrl.sandbox.local", reason="the code sandbox is not installed")
from qwqrl.cli import main  # noqa: E402
from qwqrl.sandbox.client import SandboxClient, se_result  # noqa: E402
from qwqrl.verifiers import code  # noqa: E402
from qwqrl.verifiers.registry import reward_function  # noqa: E402

DOUBLE = {"type": "stdio", "cases": [{"input": "2\n", "output": "4\n"},
                                     {"input": "5\n", "output": "10\n"}]}


def answer(body: str, lang: str = "python") -> str:
    return f"thinking\n</think>\nHere it is:\n```{lang}\n{body}\n```\n"


@pytest.fixture(scope="module")
def sandbox():
    with local.LocalSandbox(workers=2) as sb:
        yield sb


@pytest.fixture
def client(sandbox):
    return SandboxClient([sandbox.url])


def record(completion: str, tests: dict = DOUBLE, **extra) -> dict:
    return {"task": "code", "tests": tests, "completion": completion, **extra}


def test_the_score_is_the_sandbox_reward_with_status_passed_and_total(client):
    verdicts = code.verify_batch([
        record(answer("print(int(input()) * 2)")),
        record(answer("n = int(input())\nprint(4 if n == 2 else 0)")),
        record(answer("print(")),
    ], client=client)
    assert verdicts[0].score == 1.0
    assert verdicts[0].detail == {"verifier": "code", "status": "OK", "passed": 2, "total": 2}
    assert verdicts[1].detail["status"] == "WA" and verdicts[1].detail["total"] == 2
    assert verdicts[1].score < 1.0
    assert verdicts[2].score == 0.0 and verdicts[2].detail["status"] in {"RE", "CE"}


def test_the_last_fenced_block_of_the_final_answer_is_the_program(client):
    completion = ("```python\nprint('reasoning block, ignored')\n```\n</think>\n"
                  "First try:\n```python\nprint(0)\n```\nFixed:\n```\nprint(int(input()) * 2)\n```")
    (v,) = code.verify_batch([record(completion)], client=client)
    assert v.score == 1.0


def test_no_code_block_scores_zero_with_status_no_code(client):
    verdicts = code.verify_batch([record("r</think>\nJust print the double."),
                                  record("never closed ```python\nprint(1)\n```")], client=client)
    assert [v.score for v in verdicts] == [0.0, 0.0]
    assert [v.detail["status"] for v in verdicts] == ["NO_CODE", "NO_CODE"]
    assert verdicts[1].detail["reason"] == "unfinished"


class SandboxDown:
    """A client whose every replica failed: the real client returns SE results, not errors."""

    def evaluate_many(self, requests):
        return [se_result("all replicas unreachable") for _ in requests]


def test_a_sandbox_error_is_none_with_the_error_never_zero():
    (v,) = code.verify_batch([record(answer("print(1)"))], client=SandboxDown())
    assert v.score is None and "unreachable" in v.error and v.detail["status"] == "SE"


def test_malformed_tests_in_a_record_are_none_with_an_error(client):
    (v,) = code.verify_batch([record(answer("print(1)"), tests={"type": "nope"})], client=client)
    assert v.score is None and "tests" in v.error


def test_async_batch_gives_the_same_verdicts(client):
    records = [record(answer("print(int(input()) * 2)")), record("r</think> none")]
    verdicts = asyncio.run(code.averify_batch(records, client=client))
    assert [v.score for v in verdicts] == [1.0, 0.0]


def test_trl_reward_function_scores_completions_with_their_tests_column(client):
    reward = reward_function("code", client=client)
    completions = [answer("print(int(input()) * 2)"), "r</think> no code"]
    assert reward(completions, tests=[DOUBLE, DOUBLE], prompts=["p", "p"]) == [1.0, 0.0]
    assert reward.__name__ == "code_reward"


def _sandbox_servers() -> list[psutil.Process]:
    me = psutil.Process()
    return [p for p in me.children(recursive=True)
            if "qwqrl.sandbox.server" in " ".join(p.cmdline())]


def _mixed(path: Path) -> Path:
    lines = [record(answer("print(int(input()) * 2)"), id=1),
             {"task": "math", "answer": "2", "completion": "r</think>$\\boxed{2}$"},
             record("r</think> nothing", id=3)]
    path.write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_score_starts_and_stops_a_local_sandbox_when_no_url_is_set(tmp_path: Path, monkeypatch):
    monkeypatch.delenv("QWQRL_SANDBOX_URL", raising=False)
    monkeypatch.setenv("QWQRL_ALLOW_WEAK_SANDBOX", "1")  # our own programs: any isolation level will do
    before = {p.pid for p in _sandbox_servers()}
    out = tmp_path / "out.jsonl"
    assert main(["score", str(_mixed(tmp_path / "in.jsonl")), "-o", str(out)]) == 0
    got = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["score"] for r in got] == [1.0, 1.0, 0.0]
    assert got[0]["detail"] == {"verifier": "code", "status": "OK", "passed": 2, "total": 2}
    assert {p.pid for p in _sandbox_servers()} == before


def test_score_uses_the_replicas_in_the_environment(sandbox, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("QWQRL_SANDBOX_URL", f"{sandbox.url},{sandbox.url}")

    def no_local(*args, **kwargs):
        raise AssertionError("a local sandbox was started although QWQRL_SANDBOX_URL is set")

    monkeypatch.setattr(local, "LocalSandbox", no_local)
    out = tmp_path / "out.jsonl"
    assert main(["score", str(_mixed(tmp_path / "in.jsonl")), "-o", str(out)]) == 0
    assert [json.loads(line)["score"] for line in out.read_text().splitlines()] == [1.0, 1.0, 0.0]
