# `make demo` and `make test` set up everything they need on a fresh machine first.
PYTHON ?= python3
PIP = $(PYTHON) -m pip --disable-pip-version-check

.PHONY: setup demo test bench
setup:
	@command -v dot >/dev/null || (apt-get update -qq && apt-get install -y -qq graphviz >/dev/null)
	@# The CPU build of torch lies on this machine's disk; an unpinned torch could pull a CUDA build.
	@$(PYTHON) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	@$(PIP) install -q -e '.[dev]'

demo: setup
	$(PYTHON) -m specc demo

test: setup
	$(PYTHON) -m pytest -q

# bench_core.py: issue 8's targets (specc check start-up, compile time, compiled forward) as ratios in one run.
# R's nnet is the sine story's reference: timed in the same run when Rscript is there.
bench: setup
	$(PYTHON) benchmarks/bench_core.py
	@command -v Rscript >/dev/null || (apt-get update -qq && apt-get install -y -qq r-base-core r-cran-nnet >/dev/null) \
		|| echo "R's nnet could not be installed: the benchmark quotes the issue's figures instead"
	$(PYTHON) benchmarks/run.py
	$(PYTHON) benchmarks/suite.py
	$(PYTHON) benchmarks/fuzz.py --cases 100000 --seconds 1200 --save out/fuzz
