"""Shared fixtures: the tiny tokenizer/model and chat-templated prompts."""
import pytest
import torch

from qwqrl.tiny import build_model, build_tokenizer


@pytest.fixture(scope="session")
def tok():
    return build_tokenizer()


@pytest.fixture
def model(tok):
    return build_model(tok, seed=0)


@pytest.fixture(scope="session")
def prompts(tok):
    questions = ["What is 2+2?", "Name a prime number larger than ten, please."]  # different lengths: padding
    return [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
            for q in questions]


@pytest.fixture
def bias_logits():
    """bias_logits(model, token_id, amount): add `amount` to one vocabulary entry's logit on
    every forward (lm_head is tied to the embeddings, so a hook is the simple way to make a
    random model favour or avoid a token)."""
    def add(model, token_id: int, amount: float) -> None:
        bias = torch.zeros(model.config.vocab_size)
        bias[token_id] = amount
        model.lm_head.register_forward_hook(lambda _mod, _inp, out: out + bias)
    return add
