# The README's two commands. Both create/reuse .venv and install the pinned
# dependencies: torch first (CPU wheel), everything else under constraints.txt.
PYTHON ?= python3.11
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.installed

.PHONY: book test venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml requirements.txt constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet "torch==2.13.0+cpu"
	$(PIP) install --quiet -c constraints.txt -r requirements.txt
	$(PIP) install --quiet -c constraints.txt --no-deps -e .
	@if $(PIP) list 2>/dev/null | grep -iE '^(nvidia|triton|torchvision|timm)'; then \
		echo "error: a CUDA/torchvision package slipped into $(VENV)"; exit 1; fi
	touch $(STAMP)

book: $(STAMP)
	$(VENV)/bin/accel book --profile $(or $(PROFILE),cpu)

test: $(STAMP)
	$(PY) -m pytest -q

clean:
	rm -rf _build runs results
