"""What a stage checks and trims before it trains: batch sizes against the launch's world size,
and prompts longer than `generation.max_prompt_tokens`."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwqrl.cli import main
from qwqrl.config import Recipe
from qwqrl.data.prompts import drop_long_prompts
from qwqrl.errors import UserError
from qwqrl.generation.base import encode_prompts
from qwqrl.pipeline import check_batch_sizes
from qwqrl.tiny import build_tokenizer
from tests.trainer.conftest import rl_recipe, write


def test_a_batch_size_that_does_not_divide_by_the_world_size_is_a_recipe_error(tmp_path: Path) -> None:
    recipe = Recipe.model_validate(rl_recipe(tmp_path))  # batch_size 4
    check_batch_sizes(recipe, 1)
    check_batch_sizes(recipe, 4)
    with pytest.raises(UserError, match=r"stages\[0\] \(rl\)\.trainer\.batch_size=4 .*world size 3"):
        check_batch_sizes(recipe, 3)
    check_batch_sizes(recipe, 3, only=[])  # a stage this launch skips is not checked


def test_prompts_longer_than_the_limit_are_dropped_and_none_left_is_an_error() -> None:
    tok = build_tokenizer()
    short, long = {"prompt": "ab"}, {"prompt": "abcdef"}
    render = lambda r: r["prompt"]  # noqa: E731  (byte-level: one token per character)
    kept, dropped = drop_long_prompts([([short, long, short], 2.0), ([long], 1.0)], tok, render,
                                      max_tokens=4, where="stages[1] (s)")
    assert (kept, dropped) == ([([short, short], 2.0)], 2)
    with pytest.raises(UserError, match=r"stages\[1\] \(s\): every prompt is longer than "
                                        r"generation.max_prompt_tokens=1"):
        drop_long_prompts([([short], 1.0)], tok, render, max_tokens=1, where="stages[1] (s)")


def test_an_rl_stage_drops_long_prompts_at_start_and_logs_the_count(tmp_path: Path, capsys) -> None:
    recipe = rl_recipe(tmp_path, steps=1)
    # "Say 7 in few words." renders one token shorter than "Say 17 ...": ten prompts fit.
    tok = build_tokenizer()
    tok.chat_template = recipe["tokenizer"]["chat_template"]
    text = tok.apply_chat_template([{"role": "user", "content": "Say 7 in few words."}],
                                   tokenize=False, add_generation_prompt=True)
    limit = len(encode_prompts(tok, [text])[0])
    recipe["stages"][0]["generation"]["max_prompt_tokens"] = limit
    assert main(["train", str(write(tmp_path, recipe))]) == 0
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["data/dropped_long_prompts"] for r in rows if "data/dropped_long_prompts" in r] == [22]

    recipe["output_dir"] = str(tmp_path / "none-left")
    recipe["stages"][0]["generation"]["max_prompt_tokens"] = limit - 10
    assert main(["train", str(write(tmp_path, recipe, "none.yaml"))]) == 2
    assert "every prompt is longer than generation.max_prompt_tokens" in capsys.readouterr().err
