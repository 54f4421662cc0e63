"""`evaluate`, as the pipeline calls it between stages: the recipe's held-out sets keep their
`pass_rate/<task>` metrics and its suites add `<suite>/<metric>` with standard errors."""
from __future__ import annotations

from functools import partial
from pathlib import Path

from qwqrl.config import EvalConfig
from qwqrl.data.prompts import render_prompt
from qwqrl.data.synthetic import arithmetic
from qwqrl.eval_suites import SUITES, load_suite
from qwqrl.evaluation import evaluate
from qwqrl.tiny import build_model, build_tokenizer


def test_sets_and_suites_in_one_evaluation(tmp_path: Path) -> None:
    tok = build_tokenizer()
    model = build_model(tok, seed=0)
    records = arithmetic(3, seed=1, split="test")
    for r in records:  # the gold completion is training data; an eval record has none
        del r["completion"]
    suite = load_suite(SUITES["tiny-math"].with_overrides(samples=2), tmp_path, limit=2)
    metrics = evaluate(model, tok, records, EvalConfig(max_new_tokens=6), 6,
                       render=partial(render_prompt, tok), suites=[suite])
    assert set(metrics) == {"pass_rate/math", "mean_length", "unjudged", "tiny-math/avg@2",
                            "tiny-math/pass@1", "tiny-math/pass@2", "stderr/tiny-math/avg@2",
                            "stderr/tiny-math/pass@1", "stderr/tiny-math/pass@2"}
    assert metrics["mean_length"] <= 6
    assert metrics["tiny-math/avg@2"] == metrics["tiny-math/pass@1"]  # avg@k estimates pass@1
