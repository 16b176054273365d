# The README's two commands. Both create/reuse .venv and install the pinned
# dependencies: torch first (CPU wheel), everything else under constraints.txt.
# A GPU machine swaps the torch build only: make book PROFILE=full ACCEL_TORCH=torch==2.13.0 ACCEL_CUDA=1
PYTHON ?= python3.11
VENV   ?= .venv
ACCEL_TORCH  ?= torch==2.13.0+cpu
ACCEL_CUDA   ?= 0
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: book test venv clean benchmarks

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "$(ACCEL_TORCH)"
	sed 's/^torch==.*/$(ACCEL_TORCH)/' constraints.txt > $(VENV)/constraints.txt
	$(PIP) install --quiet -c $(VENV)/constraints.txt -r requirements.txt
	$(PIP) install --quiet -c $(VENV)/constraints.txt --no-deps -e .
	@if $(PIP) list 2>/dev/null | grep -iE '^(torchvision|timm)'; then \
		echo "error: torchvision/timm slipped into $(VENV) (they break import pytorch_lightning)"; exit 1; fi
	@if [ "$(ACCEL_CUDA)" != 1 ] && $(PIP) list 2>/dev/null | grep -iE '^(nvidia|triton)'; then \
		echo "error: a CUDA package slipped into the CPU environment $(VENV)"; exit 1; fi
	touch $(STAMP)

# JOBS=N: chapters executed at once (default: the cores); FORCE=1 ignores the execution cache
book: $(STAMP)
	$(VENV)/bin/accel book --profile $(or $(PROFILE),cpu) $(if $(JOBS),--jobs $(JOBS)) $(if $(FORCE),--force)

test: $(STAMP)
	ACCEL_CUDA=$(ACCEL_CUDA) $(PY) -m pytest -q

benchmarks: $(STAMP)
	$(PY) benchmarks/throughput.py $(BENCH_ARGS)
	@if command -v taskset >/dev/null; then echo "one core (taskset -c 0):"; \
		taskset -c 0 $(PY) benchmarks/throughput.py $(BENCH_ARGS); \
	else echo "taskset not found: skipping the one-core throughput run"; fi
	$(PY) benchmarks/ensemble.py
	$(PY) benchmarks/sweep.py
	$(PY) benchmarks/race.py

clean:
	rm -rf _build runs results
