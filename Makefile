# Two entry points (see README): `make demo` runs the main job end to end on built-in
# data, `make test` runs lint and the whole test suite. Both build the virtual
# environment themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup system-deps lm-tools peers demo test lint clean

setup: $(STAMP)

# torch is installed first and pinned through constraints.txt: the local CPU build.
# Anything that admits a newer torch would pull several GB of CUDA packages.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test,lm]'
	touch $(STAMP)

# Debian packages for the built-in corpus (TTS voices, text sources) and the compilers that
# build kenlm (the pip package and KenLM's tools). Listed first where it is a prerequisite,
# so that it runs before the pip install.
system-deps:
	bash scripts/install-system-deps.sh

# KenLM's lmplz/build_binary into the venv: `wav2vec2 lm build` (n-gram LMs for beam search).
lm-tools: system-deps setup
	bash scripts/build-kenlm.sh $(VENV)

# fairseq in a venv of its own, for the third side of the training-step benchmarks
# (benchmarks/pretrain_step.py --fairseq-python $(PEERS_VENV)/bin/python). Not part of setup,
# test or CI: about 3 minutes of C++ and Cython build.
PEERS_VENV ?= .peers-venv
peers:
	bash scripts/install-peers.sh $(PEERS_VENV)

demo: system-deps setup lm-tools
	$(VENV)/bin/wav2vec2 demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks experiments
	$(VENV)/bin/ruff format --check src tests benchmarks experiments

test: system-deps setup lm-tools lint
	$(VENV)/bin/pytest -q -n 2

clean:
	rm -rf $(VENV) build *.egg-info
