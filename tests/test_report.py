"""report.md holds the evaluation numbers and their changes; plots are real PNGs, written atomically."""
from __future__ import annotations

import json

import pytest

import qwqrl.report as report
from qwqrl.report import format_table, write_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

EVALS = [
    {"stage": "initial", "when": "before",
     "metrics": {"pass_rate/math": 0.125, "pass_rate/code": 0.05, "mean_length": 512.0}},
    {"stage": "stage1",  # `when` left out: after
     "metrics": {"pass_rate/math": 0.5, "pass_rate/code": 0.25, "mean_length": 1800.0}},
    {"stage": "stage2", "when": "after",
     "metrics": {"pass_rate/math": 0.475, "pass_rate/code": 0.25, "pass_rate/ifeval": 0.6,
                 "mean_length": 1700.0}},
]


@pytest.fixture
def run_dir(tmp_path):
    """Two RL stages of logged metrics and the resolved recipe that names them."""
    (tmp_path / "recipe.yaml").write_text("name: t\nstages:\n  - name: stage1\n  - name: stage2\n")
    with (tmp_path / "metrics.jsonl").open("w") as f:
        for step in range(1, 11):
            stage = 0 if step <= 5 else 1
            record = {"step": step, "time": 0.0, "stage": stage, "loss": 1.0 / step,
                      "rewards/math/mean": step / 10, "completions/mean_length": 100.0 + step}
            if stage == 1:
                record["rewards/general/mean"] = 0.5
            f.write(json.dumps(record) + "\n")
    return tmp_path


def test_report_table_has_each_checkpoint_value_and_its_change(run_dir):
    text = write_report(run_dir, EVALS, "demo run").read_text()
    assert text.startswith("# demo run\n")
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in text.splitlines() if line.startswith("| ")}
    assert rows["checkpoint"] == ["pass_rate/math", "pass_rate/code", "mean_length",
                                  "pass_rate/ifeval"]
    assert rows["initial"] == ["0.125", "0.050", "512.0", "-"]
    assert rows["after stage1"] == ["0.500", "0.250", "1800.0", "-"]
    assert rows["after stage2"] == ["0.475", "0.250", "1700.0", "0.600"]
    changes = [line for line in text.splitlines() if line.startswith("|   change")]
    assert [c.strip() for c in changes[0].split("|")[2:-1]] == ["+0.375", "+0.200", "+1288.0", "-"]
    assert [c.strip() for c in changes[1].split("|")[2:-1]] == ["-0.025", "+0.000", "-100.0", "-"]
    assert rows["total change (initial -> after stage2)"] == ["+0.350", "+0.200", "+1188.0", "-"]


def test_plots_are_valid_pngs_and_listed_in_the_report(run_dir):
    text = write_report(run_dir, EVALS, "demo run").read_text()
    written = sorted(p.name for p in (run_dir / "plots").iterdir())
    assert written == ["length.png", "loss.png", "pass_rates.png", "rewards.png"]
    for name in written:
        assert (run_dir / "plots" / name).read_bytes()[:8] == PNG_SIGNATURE
        assert f"(plots/{name})" in text


def test_reward_plot_has_a_line_per_verifier_and_marks_stage_boundaries(run_dir, monkeypatch):
    drawn = {}

    def spy(path, title, ylabel, series, boundaries):
        drawn[title] = (sorted(series), boundaries)
        path.write_bytes(PNG_SIGNATURE)

    monkeypatch.setattr(report, "_plot_lines", spy)
    write_report(run_dir, [], "t")
    assert drawn["Reward per verifier"] == (["general", "math"], [(1, "stage1"), (6, "stage2")])


def test_atomic_write_leaves_no_temporary_files(run_dir):
    write_report(run_dir, EVALS, "t")
    write_report(run_dir, EVALS, "t")  # over an existing report
    leftovers = [p.name for p in run_dir.rglob("*") if p.name.endswith(".tmp")]
    assert leftovers == []


def test_a_failed_plot_keeps_the_previous_file_and_leaves_no_temporary(run_dir, monkeypatch):
    write_report(run_dir, EVALS, "t")
    before = (run_dir / "plots" / "pass_rates.png").read_bytes()

    def broken(path, evals):
        path.write_bytes(b"half a png")
        raise RuntimeError("disk full")

    monkeypatch.setattr(report, "_plot_pass_rates", broken)
    with pytest.raises(RuntimeError):
        write_report(run_dir, EVALS, "t")
    assert (run_dir / "plots" / "pass_rates.png").read_bytes() == before
    assert not list((run_dir / "plots").glob(".*.tmp"))


def test_report_without_metrics_or_evaluations_says_so(tmp_path):
    text = write_report(tmp_path, [], "empty").read_text()
    assert "No evaluations were run." in text and "No metrics were logged." in text
    assert list((tmp_path / "plots").iterdir()) == []


def test_format_table_aligns_checkpoints_values_and_changes():
    lines = format_table(EVALS[:2]).splitlines()
    assert lines[0].split() == ["checkpoint", "pass_rate/math", "pass_rate/code", "mean_length"]
    assert lines[2].split() == ["initial", "0.125", "0.050", "512.0"]
    assert lines[4].split() == ["change", "+0.375", "+0.200", "+1288.0"]
    assert len({len(line) for line in lines}) == 1  # columns line up


def test_a_column_keeps_one_number_format_across_checkpoints():
    evals = [{"stage": "initial", "metrics": {"mean_length": 128.0, "pass_rate/math": 0.5}},
             {"stage": "rl", "metrics": {"mean_length": 16.0, "pass_rate/math": 0.25}}]
    lines = format_table(evals).splitlines()
    assert lines[3].split() == ["after", "rl", "16.0", "0.250"]
    assert lines[4].split() == ["change", "-112.0", "-0.250"]


def test_suite_metrics_show_their_standard_error_beside_the_value():
    evals = [{"stage": "initial", "metrics": {"aime24/avg@4": 0.25, "stderr/aime24/avg@4": 0.1}},
             {"stage": "rl", "metrics": {"aime24/avg@4": 0.5, "stderr/aime24/avg@4": 0.125}}]
    text = format_table(evals)
    assert "stderr/" not in text  # not a column of its own
    assert "0.250 ± 0.100" in text and "0.500 ± 0.125" in text
    assert "+0.250" in text  # the change row compares values only
