"""A policy whose config carries rope scaling (YaRN, as `model.rope_scaling` sets for long
contexts) gets an engine with the same scaling: on a prompt longer than the original context,
the engine's log-probs equal the learner's, and differ from the same weights without scaling."""
import pytest

from qwqrl.generation import SamplingParams, make_generator
from qwqrl.tiny import build_model

from .vllm_support import ATOL, max_logprob_error, require_vllm

# 64 -> 1024 positions (the tiny preset's max_position_embeddings): factor 16
YARN = {"rope_type": "yarn", "factor": 16.0, "original_max_position_embeddings": 64, "rope_theta": 10000.0}


@pytest.mark.vllm
def test_engine_uses_the_policys_rope_scaling(tok):
    require_vllm()
    scaled = build_model(tok, seed=3, rope_parameters=YARN).eval()
    plain = build_model(tok, seed=3).eval()
    engine = make_generator("vllm", scaled, tok, max_model_len=1024, enforce_eager=True)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Sum " + "+".join(map(str, range(50)))}],
                                     tokenize=False, add_generation_prompt=True)
    sampling = SamplingParams(max_new_tokens=16, temperature=1.0, top_k=0, top_p=1.0, seed=0)
    rollouts = engine.generate([prompt], n=2, sampling=sampling)
    assert len(rollouts[0].prompt_ids) > 2 * YARN["original_max_position_embeddings"]
    assert max_logprob_error(scaled, rollouts, sampling) < ATOL
    assert max_logprob_error(plain, rollouts, sampling) > 10 * ATOL  # a random model uses position little
