# Everything installs into .venv from this repository's own files. `make demo` and `make test` are the README's commands.
VENV ?= .venv
BIN := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install browser demo test slow docs readme results

$(BIN)/.installed: setup.py settings.ini
	python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0          # the CPU build; first, so no CUDA torch is pulled in
	$(BIN)/pip install -q -e ".[dev]"
	touch $@

install: $(BIN)/.installed

browser:  # Debian's Chromium for the browser tests (docs site, explorer in JupyterLab); needs root or an existing install
	@command -v chromium >/dev/null || { echo "installing Debian's chromium + chromium-driver for the browser tests"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; }

demo: install
	$(BIN)/ecor-demo

test: install browser
	@state() { git status --porcelain; git diff; }; before=$$(state | md5sum); \
	$(BIN)/nbdev_export && $(BIN)/nbdev_clean && $(BIN)/python tools/readme.py; \
	if [ "$$(state | md5sum)" != "$$before" ]; then \
	  echo "FAIL: nbdev_export / nbdev_clean / tools/readme.py changed files (library, notebooks or README out of sync):"; \
	  git status --short; exit 1; fi; echo "nbdev_export, nbdev_clean and README: in sync"
	$(BIN)/nbdev_test --n_workers 2
	$(BIN)/python -m pytest -q tests

results: install  # the benchmark of nbs/13_results, from scratch: 3 settings x 8 methods x 3 seeds (about 25 min per seed on 2 cores)
	$(BIN)/ecor-evaluate --seeds 0,1,2 --output_dir nbs/results --checkpoint_dir runs/results-checkpoints

slow: install
	$(BIN)/nbdev_test --n_workers 1 --flags slow

readme: install
	$(BIN)/python tools/readme.py

docs: install
	$(BIN)/python tools/docs.py
