# Two entry points (see README): `make demo` runs the main job end to end on built-in
# data, `make test` runs lint and the whole test suite. Both build the virtual
# environment themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed

.PHONY: setup system-deps demo test lint clean

setup: $(STAMP)

# torch is installed first and pinned through constraints.txt: the local CPU build.
# Anything that admits a newer torch would pull several GB of CUDA packages.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -c constraints.txt -e '.[test,lm]'
	touch $(STAMP)

# Debian packages for the built-in corpus (TTS voices, text sources) and for building KenLM;
# then KenLM's lmplz/build_binary into the venv (n-gram LMs for beam search).
system-deps: setup
	bash scripts/install-system-deps.sh
	bash scripts/build-kenlm.sh $(VENV)

demo: setup system-deps
	$(VENV)/bin/wav2vec2 demo

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

test: setup system-deps lint
	$(VENV)/bin/pytest -q -n 2

clean:
	rm -rf $(VENV) build *.egg-info
