# The README's commands. Each target installs first (a no-op once installed).
#   make install                         create .venv with the pinned stack (see tools/install.sh)
#   make install PYTHON=/path/to/python  install into your own environment, keeping its torch
#   make test                            install, then the fast tests (no network, a few minutes)
#   make test-slow                       install, then the slow tier (multi-process runs, whole
#                                        trainings; CI runs it after make test)
#   make test-all                        install, then every test, the networked ones included
#   make demo                            install, then the main job on generated demo data
#   make lint                            install, then ruff on the whole tree (ruff.toml)
#   make wheelhouse [WHEELHOUSE=DIR]     collect everything install needs into DIR (default
#                                        wheelhouse/; WHEELHOUSE_ARGS for another Python or to
#                                        keep the target's torch: tools/wheelhouse.py --help)
#   make install WHEELHOUSE=DIR          install from that folder alone, with no network
#   make install CUDA=1                  also mmcv's CUDA ops, without a GPU (TORCH_CUDA_ARCH_LIST,
#                                        default 8.0;9.0; CUDA_HOME, default: nvcc from PyPI)
PYTHON ?=
VENV ?= .venv
WHEELHOUSE ?=
CUDA ?=
WHEELHOUSE_ARGS ?=
BASE_PYTHON ?= python3
PY := $(if $(PYTHON),$(PYTHON),$(VENV)/bin/python)

.PHONY: install test test-slow test-all demo lint collect-env wheelhouse

install:
	@PYTHON="$(PYTHON)" VENV="$(abspath $(VENV))" WHEELHOUSE="$(WHEELHOUSE)" CUDA="$(CUDA)" bash tools/install.sh

wheelhouse:
	$(BASE_PYTHON) tools/wheelhouse.py --dest "$(or $(WHEELHOUSE),wheelhouse)" $(WHEELHOUSE_ARGS)

# the tiers are pytest markers (pytest.ini): the default run excludes `slow` and `network`
test: install
	$(PY) -m pytest tests -q -p no:cacheprovider

test-slow: install
	$(PY) -m pytest tests -q -p no:cacheprovider -m "slow and not network and not cuda_build"

test-all: install
	$(PY) -m pytest tests -q -p no:cacheprovider -m "slow or not slow"

lint: install
	$(PY) -m ruff check .

demo: install
	$(PY) tools/demo.py

collect-env: install
	$(PY) tools/collect_env.py
