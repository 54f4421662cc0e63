"""`qwqrl rm serve` as a real uvicorn process on loopback, read through RemoteRewardModel."""
from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from qwqrl.sandbox.local import free_port
from qwqrl.verifiers.reward_model import RemoteRewardModel, RewardModelScorer

PROMPTS = ["Describe the cat.", [{"role": "user", "content": "Tell me about tea."}], "Hi", "Rain?"]
COMPLETIONS = ["ok\n</think>\n\nThe cat is soft.", "hm</think>Tea is warm and kind to people.",
               "never closed", "x</think>" + "rain " * 40]


@pytest.fixture(scope="module")
def server_url(rm_dir) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "qwqrl", "rm", "serve", "--model", str(rm_dir),
         "--host", "127.0.0.1", "--port", str(port), "--batch-size", "3"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited {proc.returncode}: {proc.stdout.read()}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("server did not become healthy in 90 s")
            time.sleep(0.3)
        yield url
    finally:
        proc.terminate()  # by the PID we started, nothing else
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_remote_scores_equal_local_scores(server_url, rm_dir):
    local_rm = RewardModelScorer(str(rm_dir), batch_size=2)
    records = [{"prompt": p, "completion": c} for p, c in zip(PROMPTS, COMPLETIONS)]
    for normalize in ("none", "sigmoid", "zscore"):
        local = RewardModelScorer(local_rm.model, local_rm.tokenizer, batch_size=2,
                                  normalize=normalize)
        remote = RemoteRewardModel(server_url, normalize=normalize)
        try:
            assert remote.score(PROMPTS, COMPLETIONS) == pytest.approx(
                local.score(PROMPTS, COMPLETIONS), abs=1e-5)
            remote_raw = [v.detail["raw"] for v in remote.verify_batch(records)]
        finally:
            remote.close()
        local_raw = [v.detail["raw"] for v in local.verify_batch(records)]
        assert remote_raw[2] is None and local_raw[2] is None
        assert [r for r in remote_raw if r is not None] == pytest.approx(
            [r for r in local_raw if r is not None], abs=1e-5)


def test_score_endpoint_returns_server_normalized_scores_and_raw(server_url):
    body = {"items": [{"prompt": p, "completion": c} for p, c in zip(PROMPTS, COMPLETIONS)]}
    reply = httpx.post(f"{server_url}/v1/score", json=body, timeout=60).json()
    assert len(reply["scores"]) == len(reply["raw"]) == len(PROMPTS)
    assert reply["raw"][2] is None and reply["scores"][2] == 0.0  # server default: sigmoid
    assert all(0.0 <= s <= 1.0 for s in reply["scores"])


def test_health_and_bad_request(server_url, rm_dir):
    assert httpx.get(f"{server_url}/healthz").json() == {
        "status": "ok", "model": str(rm_dir), "normalize": "sigmoid"}
    bad = httpx.post(f"{server_url}/v1/score", json={"items": [{"prompt": "x"}]})
    assert bad.status_code == 422


def test_unreachable_server_is_never_a_low_score():
    remote = RemoteRewardModel(f"http://127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(httpx.TransportError):
        remote.score(["x"], ["y</think>z"])
    verdicts = remote.verify_batch([{"prompt": "x", "completion": "y</think>z"}, {"prompt": 1}])
    assert [v.score for v in verdicts] == [None, None]
    assert verdicts[0].error.startswith("reward model:") and "completion" in verdicts[1].error


def test_serve_cli_refuses_a_missing_model_folder(tmp_path, capsys):
    from qwqrl.cli import main

    assert main(["rm", "serve", "--model", str(tmp_path / "nope")]) == 2
    assert "nope" in capsys.readouterr().err
