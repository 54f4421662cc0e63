"""Completions made elsewhere (`qwqrl eval --responses FILE.jsonl`), joined to a suite's problems.

Two line formats are read, and one file uses one of them:
- google-research IFEval's `{"prompt": ..., "response": ...}`: joined to problems by prompt text,
  exactly as its `evaluation_main` joins them (a dict from prompt to response, so a later line
  with the same prompt replaces an earlier one; a problem without a response is an error). A
  `response` is the answer as the user saw it: text after a `</think>` is judged if there is
  one, otherwise the whole response (an API's answer has no reasoning block to close).
- ours, `{"id": ..., "completion": ...}` (optionally `suite`, `sample`; the per-sample file
  `qwqrl eval` writes is one): joined by record `id`; several lines per id are its k samples.
  A `completion` is judged as `qwqrl score` judges it: without `</think>` it is unfinished,
  unless `--no-think-opened` says the template never opened a reasoning block.
"""
from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from qwqrl.errors import UserError
from qwqrl.eval_suites import SuiteData
from qwqrl.evaluation import Completion


def read_responses(path: str) -> tuple[str, list[dict[str, Any]]]:
    """("google" | "ours", the lines); a line of neither form is a UserError naming it."""
    file = Path(path)
    if not file.is_file():
        raise UserError(f"--responses: {path} does not exist")
    rows, kinds = [], set()
    with file.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise UserError(f"{path}:{number}: not JSON ({e.msg} at column {e.colno})") from None
            if isinstance(row, dict) and isinstance(row.get("prompt"), str) and isinstance(row.get("response"), str):
                kinds.add("google")
            elif isinstance(row, dict) and "id" in row and isinstance(row.get("completion"), str):
                kinds.add("ours")
            else:
                raise UserError(f"{path}:{number}: expected {{\"prompt\": str, \"response\": str}} "
                                f"(IFEval's format) or {{\"id\": ..., \"completion\": str}}")
            rows.append(row)
    if len(kinds) != 1:
        raise UserError(f"{path}: " + ("no responses" if not kinds else
                                       "mixes prompt/response lines with id/completion lines"))
    return kinds.pop(), rows


def prompt_text(record: dict[str, Any]) -> str:
    """The text a prompt/response file keys on: the prompt, or its last user message."""
    prompt = record["prompt"]
    if isinstance(prompt, str):
        return prompt
    return [m["content"] for m in prompt if m["role"] == "user"][-1]


def attach(data: SuiteData, kind: str, rows: list[dict[str, Any]], path: str) -> list[Completion]:
    """The suite's completions from the response lines, problem-major."""
    if kind == "google":
        by_prompt = {row["prompt"]: row["response"] for row in rows}
        missing = [r for r in data.records if prompt_text(r) not in by_prompt]
        if missing:
            raise UserError(f"{path}: no response for {len(missing)} of {len(data.records)} prompts "
                            f"of suite {data.suite.name!r} (joined by prompt text); first: "
                            f"{prompt_text(missing[0])[:80]!r}")
        return [Completion(i, 0, by_prompt[prompt_text(r)]) for i, r in enumerate(data.records)]
    by_id: dict[str, list[str]] = defaultdict(list)
    for row in rows:
        if row.get("suite", data.suite.name) == data.suite.name:
            by_id[str(row["id"])].append(row["completion"])
    missing = [r["id"] for r in data.records if str(r["id"]) not in by_id]
    if missing:
        raise UserError(f"{path}: no completion for {len(missing)} of {len(data.records)} records "
                        f"of suite {data.suite.name!r} (joined by id); first: {missing[0]!r}")
    return [Completion(i, j, text) for i, r in enumerate(data.records)
            for j, text in enumerate(by_id[str(r["id"])])]
