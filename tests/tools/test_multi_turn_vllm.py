"""A 2-turn tool rollout on the real vLLM engine (`make test-vllm`): the tool runs, its response
is masked context in the update, and the model's tokens after it have the learner's log-probs."""
from __future__ import annotations

import pytest

from qwqrl.generation import SamplingParams, make_generator
from qwqrl.tiny import build_tokenizer
from qwqrl.tools import ToolRolloutGenerator, Toolset, function_tool
from tests.generation.vllm_support import VLLM_SMALL, require_vllm
from tests.tools.scripted import check_two_turns, check_update_masks, prompt_text, scripted_model

SAMPLING = SamplingParams(max_new_tokens=200, temperature=1.0, top_p=1.0, top_k=0, seed=0)


@pytest.mark.vllm
def test_two_turns_on_vllm() -> None:
    require_vllm()
    tok = build_tokenizer()
    model = scripted_model(tok, shape=VLLM_SMALL)
    engine = make_generator("vllm", model, tok, max_model_len=512, enforce_eager=True, seed=0)
    seen = []

    def mul(a: int, b: int) -> int:
        """Multiply."""
        seen.append((a, b))
        return a * b

    loop = ToolRolloutGenerator(engine, tok, Toolset([function_tool(mul)], timeout_s=5), max_turns=4)
    out = loop.generate([prompt_text(tok)], 2, SAMPLING)
    assert seen == [(6, 7), (6, 7)]
    check_two_turns(model, tok, out, SAMPLING.temperature)
    check_update_masks(model, tok, out)
