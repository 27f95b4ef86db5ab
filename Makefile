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
# bench_sequence.py: the sequence story, specc train against nn.RNN + Adam (README, "Sequences").
# bench_data.py: reading a 1M-row CSV, specc against numpy.loadtxt, time and peak RSS (README, "Data at scale").
# bench_loop.py: one epoch of mini-batch Adam over 1M in-memory rows, specc.fit against a lean loop and
# DataLoader(TensorDataset), as ratios in one run (README, "Data at scale").
bench: setup
	$(PYTHON) benchmarks/bench_core.py
	@command -v Rscript >/dev/null || (apt-get update -qq && apt-get install -y -qq r-base-core r-cran-nnet >/dev/null) \
		|| echo "R's nnet could not be installed: the benchmark quotes the issue's figures instead"
	$(PYTHON) benchmarks/run.py
	$(PYTHON) benchmarks/suite.py
	$(PYTHON) benchmarks/bench_sequence.py
	$(PYTHON) benchmarks/bench_data.py
	$(PYTHON) benchmarks/bench_loop.py
	$(PYTHON) benchmarks/fuzz.py --cases 100000 --seconds 1200 --save out/fuzz
