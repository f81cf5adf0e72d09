# The README's commands. Each target installs first (a no-op once installed).
#   make install                         create .venv with the pinned stack (see tools/install.sh)
#   make install PYTHON=/path/to/python  install into your own environment, keeping its torch
#   make test                            install, then the test suite
#   make demo                            install, then the main job on generated demo data
#   make lint                            install, then ruff on the whole tree (ruff.toml)
#   make wheelhouse [WHEELHOUSE=DIR]     collect everything install needs into DIR (default
#                                        wheelhouse/; WHEELHOUSE_ARGS for another Python or to
#                                        keep the target's torch: tools/wheelhouse.py --help)
#   make install WHEELHOUSE=DIR          install from that folder alone, with no network
PYTHON ?=
VENV ?= .venv
WHEELHOUSE ?=
WHEELHOUSE_ARGS ?=
BASE_PYTHON ?= python3
PY := $(if $(PYTHON),$(PYTHON),$(VENV)/bin/python)

.PHONY: install test demo lint collect-env wheelhouse

install:
	@PYTHON="$(PYTHON)" VENV="$(abspath $(VENV))" WHEELHOUSE="$(WHEELHOUSE)" bash tools/install.sh

wheelhouse:
	$(BASE_PYTHON) tools/wheelhouse.py --dest "$(or $(WHEELHOUSE),wheelhouse)" $(WHEELHOUSE_ARGS)

test: install
	$(PY) -m pytest tests -q -p no:cacheprovider

lint: install
	$(PY) -m ruff check .

demo: install
	$(PY) tools/demo.py

collect-env: install
	$(PY) tools/collect_env.py
