# The README's commands. Each target installs first (a no-op once installed).
#   make install                         create .venv with the pinned stack (see tools/install.sh)
#   make install PYTHON=/path/to/python  install into your own environment, keeping its torch
#   make test                            install, then the test suite
#   make demo                            install, then the main job on generated demo data
#   make lint                            install, then ruff on the whole tree (ruff.toml)
PYTHON ?=
VENV ?= .venv
PY := $(if $(PYTHON),$(PYTHON),$(VENV)/bin/python)

.PHONY: install test demo lint collect-env

install:
	@PYTHON="$(PYTHON)" VENV="$(abspath $(VENV))" bash tools/install.sh

test: install
	$(PY) -m pytest tests -q -p no:cacheprovider

lint: install
	$(PY) -m ruff check .

demo: install
	$(PY) tools/demo.py

collect-env: install
	$(PY) tools/collect_env.py
