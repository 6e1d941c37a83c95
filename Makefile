# eokit: two commands from a fresh clone -> `make demo`, `make test`.
# Picks the newest supported Python that actually runs (3.12, 3.13, then 3.11 / python3).
PYTHON ?= $(shell for p in python3.12 python3.13 python3.11 python3; do \
	  if $$p -c 'import sys; sys.exit(0 if (3,11) <= sys.version_info[:2] < (3,14) else 1)' >/dev/null 2>&1; then echo $$p; break; fi; done)
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.eokit-installed
OUT    ?= outputs
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: venv demo lint browser test lab bench rehearsal sample-data clean

$(STAMP): pyproject.toml
	@test -n "$(PYTHON)" || { echo "error: need Python 3.11-3.13 (python3.12 preferred) on PATH"; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,bench]"
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $(STAMP)

venv: $(STAMP)

## Run the whole notebook pipeline on the bundled sample data (no download).
demo: $(STAMP)
	$(BIN)/eokit run --output $(OUT) --overwrite -f notebooks/demo.yaml

## Lint (ruff) and type-check (mypy, eokit/) with the settings in pyproject.toml.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy eokit

## Headless Chromium + chromedriver for tests/test_browser.py, installed where missing (Debian's apt, as root or
## with password-less sudo). Elsewhere it says so and that test skips with the reason.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif command -v apt-get >/dev/null && { [ "$$(id -u)" = 0 ] || sudo -n true 2>/dev/null; }; then \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo -n); \
	  echo "installing chromium and chromium-driver (apt-get) for the browser test"; \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -qq && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "warning: could not install chromium/chromium-driver; tests/test_browser.py will skip"; \
	else echo "note: no chromium/chromedriver and no root apt-get to install them; tests/test_browser.py will skip"; fi

## Lint and type-check first (fail fast), then the test suite: notebooks (end to end, quick mode) and the browser test.
test: lint browser
	$(BIN)/python -m pytest -q

## Open the notebooks in JupyterLab.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

## Run every benchmark, print one table, write benchmarks/results.json.
bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

## Full-size rehearsal (TimeSen2Crop's 1,212,224 samples, one LSTM epoch, a 10,980^2 px tile map): hours on 2 cores,
## ~6 GB of disk in ./rehearsal; finished steps are kept on a rerun. Writes benchmarks/results_rehearsal.json.
rehearsal: $(STAMP)
	$(BIN)/python benchmarks/rehearsal.py --workdir rehearsal

## Regenerate the bundled sample data (seeded).
sample-data: $(STAMP)
	$(BIN)/python scripts/make_sample_data.py --overwrite

clean:
	rm -rf $(OUT) .pytest_cache .ruff_cache .mypy_cache
