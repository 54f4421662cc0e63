"""YaRN applies: the recipe's rope scaling reaches the rotary embedding (built in the model's
constructor) on every load path, and saved checkpoints carry it for the next stage and vLLM."""
from __future__ import annotations

import json
from pathlib import Path

import torch

from qwqrl.config import ModelConfig, RopeScaling
from qwqrl.models import load_policy, rope_scaling_of, save_pretrained_atomic
from qwqrl.tiny import build_model, build_tokenizer
from tests.trainer.conftest import SMALL

YARN = {"rope_type": "yarn", "factor": 4.0, "original_max_position_embeddings": 32}
CPU = torch.device("cpu")


def tiny_cfg(rope_scaling: dict | None = None, path: str | None = None) -> ModelConfig:
    source = {"path": path} if path else {"tiny": {"preset": "tiny", "overrides": SMALL}}
    return ModelConfig.model_validate({**source, "rope_scaling": rope_scaling})


def test_yarn_changes_frequencies_attention_factor_and_long_range_logits() -> None:
    tok = build_tokenizer()
    plain = build_model(tok, seed=0, **SMALL)
    yarn = build_model(tok, seed=0, rope_scaling=RopeScaling(**YARN), **SMALL)
    for (name, a), b in zip(plain.state_dict().items(), yarn.state_dict().values()):
        assert torch.equal(a, b), name  # same weights: only the positions differ
    rot_plain, rot_yarn = plain.model.rotary_emb, yarn.model.rotary_emb
    assert rot_yarn.rope_type == "yarn" and rot_plain.rope_type == "default"
    assert not torch.allclose(rot_plain.inv_freq, rot_yarn.inv_freq)
    assert rot_plain.attention_scaling == 1.0 and rot_yarn.attention_scaling > 1.0
    ids = torch.randint(0, 256, (1, 3 * YARN["original_max_position_embeddings"]),
                        generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        past = slice(YARN["original_max_position_embeddings"], None)
        diff = (plain(ids).logits[0, past] - yarn(ids).logits[0, past]).abs().amax(-1)
    assert (diff > 1e-4).all(), "logits past the original window should differ under YaRN"


def test_every_load_path_applies_yarn_and_checkpoints_carry_it(tmp_path: Path) -> None:
    tok = build_tokenizer()
    built = load_policy(tiny_cfg(YARN), tok, CPU)
    assert built.model.rotary_emb.rope_type == "yarn"
    assert rope_scaling_of(built.config) == {**YARN, **rope_scaling_of(built.config)}
    assert rope_scaling_of(load_policy(tiny_cfg(), tok, CPU).config) is None

    save_pretrained_atomic(built, tok, tmp_path / "yarn")
    saved = json.loads((tmp_path / "yarn" / "config.json").read_text())
    assert {k: saved["rope_parameters"][k] for k in YARN} == YARN
    # The next stage loads it from the checkpoint, without the recipe saying so again.
    again = load_policy(tiny_cfg(), tok, CPU, path=str(tmp_path / "yarn"))
    assert torch.equal(again.model.rotary_emb.inv_freq, built.model.rotary_emb.inv_freq)

    # A plain checkpoint loaded with the recipe's YaRN gets it before the model is built.
    save_pretrained_atomic(load_policy(tiny_cfg(), tok, CPU), tok, tmp_path / "plain")
    loaded = load_policy(tiny_cfg(YARN, path=str(tmp_path / "plain")), tok, CPU)
    assert loaded.model.rotary_emb.rope_type == "yarn"
    assert torch.equal(loaded.model.rotary_emb.inv_freq, built.model.rotary_emb.inv_freq)
