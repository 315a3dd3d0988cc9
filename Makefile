# scan2pay developer commands. Every target builds what it needs from a fresh clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Two pytest workers: most tests wait on sockets, processes and fsync, so two
# keep both cores busy (6 min instead of 10 on a slow day of this machine).
TEST_WORKERS ?= 2

.PHONY: help venv test check bench bench-ab bench-settings demo clean

help:
	@echo "make test   - create .venv, install, and run the whole test suite"
	@echo "make check  - ruff and mypy"
	@echo "make bench  - print the performance figures (QUICK=1 for a short run)"
	@echo "make bench-ab A=REV B=REV [ROUNDS=N] - the PSP's figures of two commits, alternating, with ratios"
	@echo "make bench-settings [ROUNDS=N] - what metrics and JSON logs cost, alternating runs with ratios"
	@echo "make demo   - the whole scan-to-pay flow on embedded defaults"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

# Reinstall when the project's metadata changes, not on every run.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

test: $(STAMP)
	scripts/ensure-system-deps
	$(PY) -m pytest -n $(TEST_WORKERS) --dist worksteal --durations=25 $(PYTEST_ARGS)

check: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	scripts/ensure-system-deps
	$(PY) bench/run.py $(if $(QUICK),--quick,)

bench-ab: $(STAMP)
	$(PY) bench/ab.py $(or $(A),HEAD~1) $(or $(B),HEAD) $(if $(ROUNDS),--rounds $(ROUNDS),)

bench-settings: $(STAMP)
	scripts/ensure-system-deps
	$(PY) bench/settings_ab.py $(if $(ROUNDS),--rounds $(ROUNDS),)

demo: $(STAMP)
	$(VENV)/bin/scan2pay demo $(DEMO_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache test-results
