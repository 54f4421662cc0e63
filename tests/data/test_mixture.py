from collections import Counter

import pytest

from qwqrl.data import MixtureSampler, mix_with_replay


def source(name: str, size: int) -> list[dict]:
    return [{"id": f"{name}{i}", "src": name} for i in range(size)]


def ids(batch: list[dict]) -> list[str]:
    return [r["id"] for r in batch]


def test_weights_are_respected_over_many_draws():
    sampler = MixtureSampler([(source("a", 50), 3.0), (source("b", 7), 1.0), (source("c", 20), 6.0)],
                             seed=0)
    counts = Counter(r["src"] for r in sampler.sample(20_000))
    for name, share in (("a", 0.3), ("b", 0.1), ("c", 0.6)):
        assert counts[name] / 20_000 == pytest.approx(share, abs=0.015)


def test_deterministic_and_seed_dependent():
    sources = [(source("a", 30), 1.0), (source("b", 30), 1.0)]
    first = ids(MixtureSampler(sources, seed=7).sample(40))
    assert first == ids(MixtureSampler(sources, seed=7).sample(40))
    assert first != ids(MixtureSampler(sources, seed=8).sample(40))


def test_batch_boundaries_do_not_change_the_stream():
    sources = [(source("a", 10), 1.0), (source("b", 4), 2.0)]
    whole = ids(MixtureSampler(sources, seed=1).sample(30))
    sampler = MixtureSampler(sources, seed=1)
    assert ids(sampler.sample(7) + sampler.sample(13) + sampler.sample(10)) == whole


def test_resume_continues_exactly():
    sources = [(source("a", 9), 1.0), (source("b", 5), 1.0), (source("c", 13), 2.0)]
    sampler = MixtureSampler(sources, seed=3)
    batches = [ids(sampler.sample(8)) for _ in range(2)]
    state = sampler.state_dict()
    batches += [ids(sampler.sample(8)) for _ in range(3)]

    resumed = MixtureSampler(sources, seed=3)
    resumed.load_state_dict(state)
    assert [ids(resumed.sample(8)) for _ in range(3)] == batches[2:]
    assert set(state) == {"seed", "drawn", "taken", "sizes"}  # counters, not data


def test_resume_refuses_changed_data():
    state = MixtureSampler([(source("a", 9), 1.0)], seed=3).state_dict()
    with pytest.raises(ValueError, match="data or seed changed"):
        MixtureSampler([(source("a", 10), 1.0)], seed=3).load_state_dict(state)


def test_each_epoch_uses_every_record_once_then_reshuffles():
    sampler = MixtureSampler([(source("a", 12), 1.0)], seed=5)
    epochs = [ids(sampler.sample(12)) for _ in range(3)]
    for epoch in epochs:
        assert sorted(epoch) == sorted(f"a{i}" for i in range(12))
    assert epochs[0] != epochs[1] != epochs[2]


def test_without_replacement_per_source_in_a_mixture():
    sampler = MixtureSampler([(source("a", 6), 1.0), (source("b", 100), 1.0)], seed=2)
    drawn_a = [i for i in ids(sampler.sample(200)) if i.startswith("a")]
    for start in range(0, len(drawn_a) - 5, 6):
        assert len(set(drawn_a[start:start + 6])) == 6


def test_samples_are_copies():
    records = source("a", 3)
    MixtureSampler([(records, 1.0)], seed=0).sample(3)[0]["reward"] = 1.0
    assert all("reward" not in r for r in records)


@pytest.mark.parametrize("sources, message", [
    ([], "at least one source"),
    ([([], 1.0)], "no records"),
    ([(source("a", 1), 0.0)], "weights must be > 0"),
])
def test_bad_mixtures(sources, message):
    with pytest.raises(ValueError, match=message):
        MixtureSampler(sources, seed=0)


def test_replay_share():
    math, code, general = source("m", 5), source("c", 5), source("g", 5)
    mixed = mix_with_replay([(general, 2.0)], [(math, 3.0), (code, 1.0)], share=0.2)
    assert [(records[0]["src"], w) for records, w in mixed] == [
        ("g", pytest.approx(0.8)), ("m", pytest.approx(0.15)), ("c", pytest.approx(0.05))]
    counts = Counter(r["src"] for r in MixtureSampler(mixed, seed=0).sample(10_000))
    assert (counts["m"] + counts["c"]) / 10_000 == pytest.approx(0.2, abs=0.015)


def test_no_replay_without_previous_stage_or_share():
    current = [(source("g", 2), 1.0)]
    assert mix_with_replay(current, None, 0.2) == current
    assert mix_with_replay(current, [(source("m", 2), 1.0)], 0.0) == current
    with pytest.raises(ValueError, match="replay share"):
        mix_with_replay(current, current, 1.0)
