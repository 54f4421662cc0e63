"""metrics.jsonl and samples are written as DESIGN.md says; wandb stays local and never prompts."""
from __future__ import annotations

import json

import pytest

from qwqrl.config import LoggingConfig
from qwqrl.tracking import Tracker, read_metrics

RECIPE = {"name": "t", "seed": 0}


def logging_config(mode: str) -> LoggingConfig:
    return LoggingConfig.model_validate({"wandb": {"mode": mode}})


@pytest.fixture(autouse=True)
def isolated_wandb(tmp_path, monkeypatch):
    """wandb's own config and cache go to the test's folder; no key, no netrc: no account."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for var in ("WANDB_CONFIG_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        monkeypatch.setenv(var, str(home / var.lower()))
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL", "WANDB_RUN_ID", "WANDB_RESUME"):
        monkeypatch.delenv(var, raising=False)


def test_log_appends_one_flushed_line_per_call_with_step_time_and_metrics(tmp_path):
    tracker = Tracker(tmp_path / "run", logging_config("disabled"), RECIPE)
    tracker.log({"reward": 0.5, "rewards/math/mean": 0.25}, step=1)
    tracker.log({"loss": 1.5}, step=2)
    # flushed: readable before finish
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    tracker.finish()
    assert len(lines) == 2
    first = json.loads(lines[0])
    assert first["step"] == 1 and first["reward"] == 0.5 and first["rewards/math/mean"] == 0.25
    assert isinstance(first["time"], float)
    assert json.loads(lines[1])["loss"] == 1.5


def test_tracker_carries_the_recipe_logging_cadence_for_the_trainer(tmp_path):
    cfg = LoggingConfig.model_validate({"wandb": {"mode": "disabled"}, "log_every": 3,
                                        "samples_every": 7})
    tracker = Tracker(tmp_path, cfg, RECIPE, is_main=False)
    assert (tracker.log_every, tracker.samples_every) == (3, 7)


def test_non_main_process_writes_nothing(tmp_path):
    tracker = Tracker(tmp_path / "run", logging_config("offline"), RECIPE, is_main=False)
    tracker.log({"reward": 1.0}, step=1)
    tracker.log_samples([{"completion": "x", "reward": 1.0}], step=1)
    tracker.finish()
    assert not (tmp_path / "run").exists()


def test_read_metrics_skips_a_last_line_cut_short_by_a_crash(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "reward": 0.1}\n{"step": 2, "rew')
    assert read_metrics(tmp_path) == [{"step": 1, "reward": 0.1}]


def test_read_metrics_reports_a_broken_line_before_the_last(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n{"step": 2,\n{"step": 3}\n')
    with pytest.raises(ValueError, match="metrics.jsonl:2"):
        read_metrics(tmp_path)


def test_a_tracker_reopened_after_a_crash_cuts_the_partial_line_before_appending(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1, "reward": 0.1}\n{"step": 2, "rew')
    with Tracker(tmp_path, logging_config("disabled"), RECIPE) as tracker:
        tracker.log({"reward": 0.25}, step=2)
    assert [(r["step"], r["reward"]) for r in read_metrics(tmp_path)] == [(1, 0.1), (2, 0.25)]


def test_several_logs_at_one_step_are_all_kept(tmp_path):
    with Tracker(tmp_path, logging_config("disabled"), RECIPE) as tracker:
        tracker.log({"reward": 0.5}, step=3)
        tracker.log({"pass_rate/math": 0.4}, step=3)
    assert [sorted(r) for r in read_metrics(tmp_path)] == [
        ["reward", "step", "time"], ["pass_rate/math", "step", "time"]]


def test_samples_go_to_a_file_per_step(tmp_path):
    rows = [{"prompt": [{"role": "user", "content": "1+1?"}], "completion": "2", "reward": 1.0},
            {"prompt": "2+2?", "completion": "5", "reward": 0.0}]
    with Tracker(tmp_path, logging_config("disabled"), RECIPE) as tracker:
        tracker.log_samples(rows, step=7)
    written = (tmp_path / "samples" / "step-000007.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in written] == rows


def test_offline_wandb_writes_its_run_and_sample_table_under_the_run_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    run = tmp_path / "run"
    with Tracker(run, logging_config("offline"), RECIPE) as tracker:
        tracker.log({"reward": 0.5}, step=1)
        tracker.log_samples([{"completion": "x", "reward": 0.5, "detail": {"a": 1}}], step=1)
    runs = list((run / "wandb").glob("offline-run-*"))
    assert len(runs) == 1
    assert list(runs[0].glob("*.wandb"))
    assert list(runs[0].rglob("samples_*.table.json"))


def test_wandb_run_id_is_kept_so_a_resume_continues_the_same_run(tmp_path):
    for _ in range(2):
        Tracker(tmp_path, logging_config("offline"), RECIPE).finish()
    run_id = (tmp_path / "wandb" / "run-id").read_text().strip()
    runs = [p.name for p in (tmp_path / "wandb").glob("offline-run-*")]
    assert len(runs) == 2 and all(run_id in name for name in runs)


def test_online_without_an_api_key_falls_back_to_offline(tmp_path, caplog):
    with Tracker(tmp_path, logging_config("online"), RECIPE) as tracker:
        tracker.log({"reward": 0.5}, step=1)
    assert "logging offline" in caplog.text
    assert list((tmp_path / "wandb").glob("offline-run-*"))


def test_disabled_wandb_creates_no_wandb_folder(tmp_path):
    with Tracker(tmp_path, logging_config("disabled"), RECIPE) as tracker:
        tracker.log({"reward": 0.5}, step=1)
        tracker.log_samples([{"completion": "x", "reward": 0.5}], step=1)
    assert not (tmp_path / "wandb").exists()
    assert (tmp_path / "metrics.jsonl").is_file()
