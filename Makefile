# Greenroom: `make run` (gateway on the demo config), `make test` (whole suite), `make install` (setup only).
VENV      ?= .venv
PY        := $(VENV)/bin/python
STAMP     := $(VENV)/.greenroom-installed
DATA_DIR  ?= var
CONFIG    ?= config/demo
export GREENROOM_PYTHON

.PHONY: install run test test-fast lint typecheck bench clean

install: $(STAMP)

$(STAMP): pyproject.toml scripts/find-python.sh
	@set -e; \
	if [ -x "$(PY)" ] && ! "$(PY)" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)'; then \
	    echo "greenroom: $(VENV) uses Python < 3.12; recreating it"; rm -rf "$(VENV)"; fi; \
	if [ ! -x "$(PY)" ]; then \
	    interp=$$(sh scripts/find-python.sh); \
	    echo "greenroom: creating $(VENV) with $$interp"; \
	    "$$interp" -m venv "$(VENV)"; fi; \
	"$(PY)" -m pip install --quiet --disable-pip-version-check --upgrade pip; \
	"$(PY)" -m pip install --quiet --disable-pip-version-check -e '.[dev]'; \
	touch "$(STAMP)"

run: install
	$(VENV)/bin/greenroom serve --config $(CONFIG) --data-dir $(DATA_DIR)

test: install
	@sh scripts/system-deps.sh
	$(PY) -m pytest

test-fast: install
	$(PY) -m pytest -m "not e2e"

lint: install
	$(VENV)/bin/ruff check gateway addons tests bench
	$(VENV)/bin/mypy

bench: install
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
