# Two commands a new user needs: `make demo` and `make test`. Both build .venv on first use.
VENV     ?= .venv
PY       := $(VENV)/bin/python
PIP      := $(PY) -m pip
# torch goes in first and alone: installed as a dependency it would arrive as a CUDA build of
# several GB. GPU users set TORCH_SPEC (and PIP_TORCH_ARGS for their index) to a CUDA build.
TORCH_SPEC     ?= torch==2.13.0
PIP_TORCH_ARGS ?=
STAMP    := $(VENV)/.qwqrl-installed

.PHONY: install demo test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=23" setuptools wheel
	$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q $(PIP_TORCH_ARGS) "$(TORCH_SPEC)"
	$(PIP) install -q numpy
	# DeepSpeed's build imports torch, so it is built against the torch already installed.
	$(PIP) install -q --no-build-isolation "deepspeed>=0.17,<0.20"
	$(PIP) install -q --no-build-isolation -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/qwqrl demo

test: $(STAMP)
	HF_HUB_OFFLINE=1 $(PY) -m pytest -q

bench: $(STAMP)
	for b in benchmarks/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) runs build *.egg-info
