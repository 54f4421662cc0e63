"""Nothing whole on a rank under ZeRO-3: with 2 ranks (gloo on CPU) the policy (from the moment
it is loaded), the KL reference and the PPO critic each hold about half their parameters per
rank; greedy generation on the partitioned policy (the initial evaluation's path), the critic's
initial weights and the updates (KL term included) equal one unsharded process's."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from tests.trainer.dp_worker import G
from tests.trainer.test_distributed import torchrun


def test_zero3_shards_policy_and_reference_and_matches_one_rank(tmp_path: Path) -> None:
    torchrun(1, tmp_path, worker="zero3_worker.py")
    torchrun(2, tmp_path, worker="zero3_worker.py")
    unsharded = torch.load(tmp_path / "zero0_world1.pt")
    sharded = torch.load(tmp_path / "zero3_world2.pt")
    loaded, policy, reference, critic = sharded["shares"].tolist()
    for share in (loaded, policy, reference, critic):
        assert share == pytest.approx(0.5, abs=0.05)
    assert unsharded["shares"].tolist() == [1.0] * 4
    assert sharded["greedy"] == unsharded["greedy"]
    assert all(len(c) == 5 for c in unsharded["greedy"])
    assert sharded["critic"].keys() == unsharded["critic"].keys()
    for name, value in unsharded["critic"].items():
        torch.testing.assert_close(sharded["critic"][name], value, msg=name)
    for name, value in unsharded["state"].items():
        torch.testing.assert_close(sharded["state"][name], value, rtol=1e-3, atol=1e-4, msg=name)
    # the frozen reference, sharded, scores rank 0's groups (0 and 2) as the unsharded one does
    rank0_rows = [i for g in (0, 2) for i in range(g * G, (g + 1) * G)]
    torch.testing.assert_close(sharded["ref_logprobs"], unsharded["ref_logprobs"][rank0_rows],
                               rtol=1e-5, atol=1e-5)


def test_a_zero3_run_from_a_checkpoint_evaluates_and_trains_the_partitioned_policy(tmp_path: Path) -> None:
    """The pipeline loads the policy partitioned and evaluates it inside its engine, before and
    after the stage, with a KL reference and a PPO critic loaded partitioned beside it."""
    from qwqrl.pipeline import Pipeline
    from qwqrl.recipe import load_recipe
    from qwqrl.tiny import build_model, build_tokenizer
    from tests.trainer.conftest import SMALL, rl_recipe, word_limit_data, write

    tok = build_tokenizer()
    build_model(tok, seed=0, **SMALL).save_pretrained(tmp_path / "init")
    tok.save_pretrained(tmp_path / "init")
    recipe = rl_recipe(tmp_path, steps=1, name="ppo", filter_zero_std=False, kl={"beta": 0.1})
    recipe["model"] = {"path": str(tmp_path / "init"), "dtype": "float32"}
    recipe["stages"][0]["trainer"]["zero_stage"] = 3
    recipe["eval"] = {"sets": [{"path": str(word_limit_data(tmp_path, n=4))}], "max_new_tokens": 4}
    path = write(tmp_path, recipe)
    evals = Pipeline(load_recipe(path), path.parent).run()
    assert [e["stage"] for e in evals] == ["initial", "rl"]
    assert all("pass_rate/ifeval" in e["metrics"] for e in evals)
