"""Launch scripts parse and hand the right command to their launcher; accelerate configs are valid.

The launchers themselves (torchrun, deepspeed, srun, scontrol, curl) are replaced by stubs on
PATH that record what they were asked to do, so the scripts run end to end without GPUs.
"""
from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from accelerate.commands.config.config_args import load_config_from_file

ROOT = Path(__file__).resolve().parents[1]
LAUNCH = ROOT / "launch"
SCRIPTS = sorted(p for p in LAUNCH.rglob("*") if p.suffix in (".sh", ".slurm"))
ACCELERATE = {"ddp": (0, "none"), "zero2": (2, "none"), "zero3": (3, "none"),
              "zero3_offload": (3, "cpu")}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(LAUNCH)))
def test_launch_script_is_executable_and_parses(script):
    assert os.access(script, os.X_OK)
    subprocess.run(["bash", "-n", str(script)], check=True)


def test_every_launcher_has_its_script():
    assert {str(p.relative_to(LAUNCH)) for p in SCRIPTS} >= {
        "torchrun.sh", "deepspeed.sh", "slurm/train.slurm"}


@pytest.mark.parametrize("name", sorted(ACCELERATE))
def test_accelerate_config_is_deepspeed_with_the_named_zero_stage(name):
    path = LAUNCH / "accelerate" / f"{name}.yaml"
    raw = yaml.safe_load(path.read_text())
    config = load_config_from_file(str(path))  # accelerate's own loader rejects unknown keys
    stage, offload = ACCELERATE[name]
    assert config.distributed_type == "DEEPSPEED"
    assert config.mixed_precision == "bf16"
    assert raw["deepspeed_config"]["zero_stage"] == stage
    assert raw["deepspeed_config"]["offload_optimizer_device"] == offload
    assert raw["deepspeed_config"]["offload_param_device"] == offload


# --------------------------------------------------------------------------------- dry runs


def stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text("#!/usr/bin/env bash\n" + body + "\n")
    path.chmod(0o755)


@pytest.fixture
def stubs(tmp_path):
    """A bin folder first on PATH, and a log each stub appends its command line to."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    # a user's shell, not this test process: earlier in-process tests may have set the
    # single-process rendezvous variables (qwqrl.distributed.init_distributed)
    shell = {k: v for k, v in os.environ.items()
             if k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")}
    env = {**shell, "PATH": f"{bin_dir}:{os.environ['PATH']}", "CALLS": str(log)}
    for name in ("torchrun", "deepspeed"):
        stub(bin_dir, name, 'echo "$(basename "$0") $*" >> "$CALLS"\n'
                            '[[ -z "${DS_ENV_FILE:-}" ]] || cat "$DS_ENV_FILE" >> "$CALLS"')
    return bin_dir, log, env


def run_script(script: str, args: list[str], env: dict[str, str], timeout: float = 30):
    return subprocess.run(["bash", str(LAUNCH / script), *args], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=timeout)


def test_torchrun_script_starts_one_rank_per_gpu_with_the_recipe_and_extra_args(stubs):
    _, log, env = stubs
    done = run_script("torchrun.sh", ["r.yaml", "--set", "seed=1"], {**env, "NPROC": "4"})
    assert done.returncode == 0, done.stderr
    assert log.read_text().split() == [
        "torchrun", "--standalone", "--nnodes=1", "--nproc_per_node=4",
        "-m", "qwqrl", "train", "r.yaml", "--set", "seed=1"]


def test_deepspeed_script_passes_the_hostfile_and_forwards_qwqrl_variables(stubs, tmp_path):
    _, log, env = stubs
    hostfile = tmp_path / "hosts"
    hostfile.write_text("node-1 slots=8\n")
    env = {**env, "QWQRL_SANDBOX_URL": "http://s1:8080", "NUM_GPUS": "8"}
    done = run_script("deepspeed.sh", ["--hostfile", str(hostfile), "r.yaml", "--set", "seed=1"], env)
    assert done.returncode == 0, done.stderr
    call, *forwarded = log.read_text().splitlines()
    assert call.split() == ["deepspeed", "--hostfile", str(hostfile), "--num_gpus", "8",
                            "--master_port", "29500", "--no_local_rank", "--module",
                            "qwqrl", "train", "r.yaml", "--set", "seed=1"]
    assert "QWQRL_SANDBOX_URL=http://s1:8080" in forwarded


@pytest.fixture
def slurm(stubs, tmp_path):
    """A fake three-component heterogeneous allocation: 2 trainer, 2 sandbox, 1 RM node."""
    bin_dir, log, env = stubs
    stub(bin_dir, "scontrol", 'tr , "\\n" <<< "$3"')
    stub(bin_dir, "srun", 'echo "srun $*" >> "$CALLS"\n'
                          'while [[ "$1" == --* ]]; do shift; done\nexec "$@"')
    stub(bin_dir, "curl", 'exit "${CURL_RC:-0}"')
    # A server records its pid and command line, then waits to be stopped.
    stub(bin_dir, "qwqrl", 'echo "$$ qwqrl $*" >> "$CALLS.servers"\n'
                           '[[ -z "${SERVER_RC:-}" ]] || exit "$SERVER_RC"\nexec sleep 300')
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "activate").write_text("")
    return log, {**env, "QWQRL_VENV": str(venv.parent), "SLURM_JOB_ID": "42",
                 "SLURM_JOB_NODELIST_HET_GROUP_0": "g1,g2",
                 "SLURM_JOB_NODELIST_HET_GROUP_1": "c1,c2",
                 "SLURM_JOB_NODELIST_HET_GROUP_2": "r1"}


def servers(log: Path) -> dict[int, str]:
    lines = Path(f"{log}.servers").read_text().splitlines()
    return {int(pid): command for pid, command in (line.split(" ", 1) for line in lines)}


def assert_stopped(pids) -> None:
    deadline = time.monotonic() + 5
    for pid in pids:
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            pytest.fail(f"server {pid} still running after the job ended")


def test_slurm_job_starts_servers_passes_their_urls_to_torchrun_and_stops_them(slurm):
    log, env = slurm
    done = run_script("slurm/train.slurm", ["r.yaml", "--set", "seed=1"],
                      {**env, "RM_MODEL": "/models/rm"})
    assert done.returncode == 0, done.stderr
    started = servers(log)
    assert sorted(started.values()) == [
        "qwqrl rm serve --model /models/rm --host 0.0.0.0 --port 8100 --device cuda:0 "
        "--dtype bfloat16",
        "qwqrl sandbox serve --host 0.0.0.0 --port 8080"]
    trainer = [line for line in log.read_text().splitlines() if line.startswith("torchrun")]
    assert trainer == [
        "torchrun --nnodes=2 --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=g1:29500 "
        "--rdzv_id=42 -m qwqrl train r.yaml "
        "--set stages.2.rewards.general.path=null --set stages.2.rewards.general.url=http://r1:8100 "
        "--set seed=1"]
    assert "sandboxes: http://c1:8080,http://c2:8080;" in done.stdout
    assert_stopped(started)


def test_slurm_job_without_rm_model_keeps_the_recipe_reward_model(slurm):
    log, env = slurm
    done = run_script("slurm/train.slurm", ["r.yaml"], env)
    assert done.returncode == 0, done.stderr
    assert [c for c in servers(log).values() if "rm serve" in c] == []
    assert "--set" not in log.read_text().split("torchrun", 1)[1]
    assert_stopped(servers(log))


def test_slurm_job_fails_without_training_when_a_server_dies_before_healthz(slurm):
    log, env = slurm
    done = run_script("slurm/train.slurm", ["r.yaml"], {**env, "CURL_RC": "7", "SERVER_RC": "1"})
    assert done.returncode != 0
    assert "exited before answering /healthz" in done.stderr
    assert "torchrun" not in log.read_text()


def test_local_cluster_runs_the_slurm_layout_on_loopback_and_stops_it(slurm, tmp_path):
    """The rehearsal's launcher shares the Slurm job's server code (launch/services.sh): two
    replicas and the RM on 127.0.0.1, their URLs to two torchrun nodes, all stopped at the end.
    (`make rehearsal` runs it for real; this pins its command lines.)"""
    log, env = slurm
    env = {**env, "RM_MODEL": "/models/rm", "CLUSTER_DIR": str(tmp_path / "cluster"),
           "RDZV_PORT": "29600", "SANDBOX_PORT": "9000", "RM_PORT": "9100"}
    stub(Path(env["PATH"].split(":")[0]), "torchrun",
         'echo "torchrun $* url=$QWQRL_SANDBOX_URL timeout=$QWQRL_DIST_TIMEOUT_S" >> "$CALLS"')
    done = run_script("local-cluster.sh", ["r.yaml", "--set", "seed=1"], env)
    assert done.returncode == 0, done.stderr
    started = servers(log)
    assert sorted(started.values()) == [
        "qwqrl rm serve --model /models/rm --host 127.0.0.1 --port 9100",
        "qwqrl sandbox serve --host 127.0.0.1 --port 9000 --workers 1",
        "qwqrl sandbox serve --host 127.0.0.1 --port 9001 --workers 1"]
    nodes = sorted(line for line in log.read_text().splitlines() if line.startswith("torchrun"))
    assert "is_host=0" in nodes[0] and "is_host=1" in nodes[1]  # node 0 hosts the rendezvous
    assert nodes[0].replace("is_host=0", "is_host=1") == nodes[1]
    node = nodes[0].split()
    assert node[:3] == ["torchrun", "--nnodes=2", "--nproc-per-node=1"]
    assert "--rdzv-endpoint=127.0.0.1:29600" in node and "--rdzv-backend=c10d" in node
    assert node[node.index("-m"):] == [
        "-m", "qwqrl", "train", "r.yaml", "--set", "stages.2.rewards.general.path=null",
        "--set", "stages.2.rewards.general.url=http://127.0.0.1:9100", "--set", "seed=1",
        "url=http://127.0.0.1:9000,http://127.0.0.1:9001", "timeout=120"]
    assert_stopped(started)
