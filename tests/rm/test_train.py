"""`train_reward_model`, `qwqrl rm train`: a tiny RM learns the synthetic pairs; bad input fails."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from qwqrl.cli import main
from qwqrl.errors import UserError
from qwqrl.rm.synthetic import make_preference_pairs
from qwqrl.rm.train import train_reward_model
from qwqrl.tiny import build_reward_model
from qwqrl.verifiers.reward_model import RewardModelScorer

TRAIN_PAIRS, HELD_OUT_PAIRS = 1600, 250


@pytest.fixture(scope="module")
def trained(tokenizer, tmp_path_factory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("trained") / "rm"
    start = time.monotonic()
    path = train_reward_model(make_preference_pairs(TRAIN_PAIRS, seed=0),
                              build_reward_model(tokenizer, seed=0), tokenizer, out,
                              epochs=1, lr=1e-3, batch_size=16, seed=0)
    return path, time.monotonic() - start


def test_trained_rm_ranks_held_out_chosen_over_rejected(trained):
    path, seconds = trained
    scorer = RewardModelScorer(str(path), normalize="none")
    held_out = make_preference_pairs(HELD_OUT_PAIRS, seed=1)
    prompts = [p["prompt"] for p in held_out]
    chosen = scorer.score(prompts, [p["chosen"] for p in held_out])
    rejected = scorer.score(prompts, [p["rejected"] for p in held_out])
    accuracy = sum(c > r for c, r in zip(chosen, rejected)) / len(held_out)
    print(f"held-out accuracy {accuracy:.3f} after {seconds:.0f} s of training")
    assert accuracy > 0.8


def test_saved_rm_loads_with_auto_classes_and_leaves_no_staging(trained):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    path, _ = trained
    model = AutoModelForSequenceClassification.from_pretrained(path)
    assert model.config.num_labels == 1
    assert AutoTokenizer.from_pretrained(path).chat_template
    assert [p.name for p in path.parent.iterdir()] == ["rm"]


def test_existing_output_is_refused_unless_overwrite(tokenizer, tmp_path):
    (tmp_path / "rm").mkdir()
    (tmp_path / "rm" / "keep.txt").write_text("x")
    with pytest.raises(UserError, match="not empty"):
        train_reward_model(make_preference_pairs(4), build_reward_model(tokenizer), tokenizer,
                           tmp_path / "rm", steps=1)
    assert (tmp_path / "rm" / "keep.txt").exists()


def write_pairs(path: Path, rows: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


@pytest.mark.parametrize("bad_line, message", [
    ("{not json", "not valid JSON"),
    ({"prompt": "Hi", "chosen": "a"}, "missing `rejected`"),
    ({"prompt": "Hi", "chosen": "<think>never closed", "rejected": "b"}, "never closes"),
    ({"prompt": 3, "chosen": "a", "rejected": "b"}, "prompt must be"),
])
def test_cli_train_names_file_and_line_of_a_malformed_pair(tmp_path, capsys, bad_line, message):
    good = make_preference_pairs(2)
    pairs = write_pairs(tmp_path / "pairs.jsonl", [good[0], "", bad_line, good[1]])
    code = main(["rm", "train", str(pairs), "-o", str(tmp_path / "rm"), "--tiny", "tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert f"{pairs}:3:" in err and message in err
    assert not (tmp_path / "rm").exists()


def test_cli_train_from_tiny_writes_a_loadable_rm(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", make_preference_pairs(8))
    code = main(["rm", "train", str(pairs), "-o", str(tmp_path / "rm"), "--tiny", "tiny",
                 "--steps", "2", "--batch-size", "4"])
    assert code == 0, capsys.readouterr().err
    scorer = RewardModelScorer(str(tmp_path / "rm"))
    assert 0.0 < scorer.score(["Describe the cat."], ["</think>The cat is calm."])[0] < 1.0


def test_cli_train_refuses_an_unknown_tiny_preset(tmp_path, capsys):
    pairs = write_pairs(tmp_path / "pairs.jsonl", make_preference_pairs(2))
    assert main(["rm", "train", str(pairs), "-o", str(tmp_path / "rm"), "--tiny", "huge"]) == 2
    assert "unknown preset" in capsys.readouterr().err
