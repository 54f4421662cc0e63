"""Worker for test_weights.py::test_hf_generation_across_zero3_ranks, launched with 2 ranks by
torch.distributed.run. Ranks get different prompts and budgets, so one finishes early and must
keep stepping (synced_gpus) while the other still needs its shards; both must match an
unpartitioned copy. Then mismatched batch counts must raise on every rank, not hang."""
import deepspeed
import torch

from qwqrl.generation import SamplingParams
from qwqrl.generation.hf import HFGenerator
from qwqrl.distributed import shutdown
from qwqrl.tiny import build_model, build_tokenizer


def main() -> None:
    tok = build_tokenizer()
    model = build_model(tok)
    engine, *_ = deepspeed.initialize(model=model, optimizer=torch.optim.AdamW(model.parameters(), lr=1e-4),
                                      config={"train_micro_batch_size_per_gpu": 1, "zero_optimization": {"stage": 3}})
    rank = torch.distributed.get_rank()
    questions = ["hi", "what is 2+2?"] if rank == 0 else ["a longer question, so the padding differs", "x"]
    prompts = [tok.apply_chat_template([{"role": "user", "content": q}], tokenize=False, add_generation_prompt=True)
               for q in questions]
    sampling = SamplingParams(max_new_tokens=3 if rank == 0 else 10, seed=rank)
    sharded = HFGenerator(engine, tok).generate(prompts, n=2, sampling=sampling)
    plain = HFGenerator(build_model(tok), tok).generate(prompts, n=2, sampling=sampling)
    assert [r.completion_ids for r in sharded] == [r.completion_ids for r in plain]

    try:
        HFGenerator(engine, tok, batch_size=1).generate(prompts[:1 + rank], n=1, sampling=sampling)
    except ValueError as err:
        assert "same number of batches" in str(err)
    else:
        raise AssertionError("mismatched batch counts were not detected")
    print(f"rank {rank} ok", flush=True)


if __name__ == "__main__":
    main()
    shutdown()
