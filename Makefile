# calo_calib developer commands. Everything runs inside the project venv `.venv`.
PY := .venv/bin/python
# CPU build of torch from the local wheel/index (keeps the venv ~2 GB).
# On a GPU machine: make install TORCH=torch EXTRAS=gpu,dev,root
TORCH ?= torch==2.13.0
EXTRAS ?= cpu,dev,root
# --dist loadfile: one worker per test file (tests/launch/test_slurm.py shares one SLURM).
# Environment for tests: no W&B network, no display, no OpenMP spin-waiting on the 2 CI cores.
TEST_ENV := WANDB_MODE=offline MPLBACKEND=Agg OMP_WAIT_POLICY=PASSIVE
PYTEST_ARGS ?=

.PHONY: install test test-fast data validate bench bench-sim bench-pipeline bench-train bench-inference lint clean distclean

# Idempotent: the venv is created only if missing; re-running pip is a quick no-op.
install: $(PY)
	$(PY) -m pip install '$(TORCH)'
	$(PY) -m pip install -e '.[$(EXTRAS)]'

$(PY):
	python3 -m venv .venv

test:
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist loadfile -q $(PYTEST_ARGS)

test-fast:
	$(TEST_ENV) $(PY) -m pytest -n 2 --dist loadfile -q -m "not slow" $(PYTEST_ARGS)

data:
	$(PY) -m calo_calib.make_data

validate:
	$(PY) -m calo_calib.validate

bench-sim:
	$(PY) experiments/bench_sim.py

# Parquet -> padded batches: clusters/s per core and with worker processes (needs `make data`).
bench-pipeline:
	$(PY) experiments/bench_pipeline.py

# Training step, FLOP utilisation, data pipeline and memory of the networks (needs `make data`).
bench-train:
	$(PY) experiments/bench_train.py

# onnxruntime / XGBoost latency and throughput of the exported calibrations (needs `make data`).
bench-inference:
	$(PY) experiments/bench_inference.py

# Every benchmark; results with date, machine and commit in benchmarks/results/.
bench: bench-sim bench-pipeline bench-train bench-inference

lint:
	$(PY) -m ruff check .

# Removes caches and build leftovers (not the venv, data or run outputs).
clean:
	rm -rf .pytest_cache .ruff_cache build dist *.egg-info
	find . -path ./.venv -prune -o -type d -name __pycache__ -exec rm -rf {} +

# `clean` plus the venv.
distclean: clean
	rm -rf .venv
