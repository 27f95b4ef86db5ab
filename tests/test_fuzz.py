"""Fuzzing in the suite (issue 11): random specs from specc's own grammar (Hypothesis's ``from_lark``) and
mutations of the bundled specs, a few thousand in all, each run through every stage a user reaches
(tests/fuzzing.py, ``examine``). Whatever the text, only ``SpecError`` escapes ``specc.graph``,
``specc.to_source``, ``specc.draw`` and ``specc.load``; a valid spec's module runs on random inputs of the
documented shapes ([B, n] for a vector, [B] for a scalar) and returns outputs of the documented shapes;
``specc check``, ``check --dump ast``, ``inspect`` and ``explain`` exit with 0 or 1 (check: 0 exactly when
the spec is valid), never print a traceback, and a failure's report has its ``error:`` line.

Deterministic: ``derandomize=True`` and no example database, so CI tests the same cases on every run
(for one Hypothesis version). benchmarks/fuzz.py runs the same generators on 100,000 cases.
"""
import random
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark

from fuzzing import DataPicker, derive, examine, grammar, lark_terminals, mutant, seeds

pytestmark = pytest.mark.filterwarnings("ignore::specc.errors.SpecDiagnostic")

FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


class Budget:
    """Seconds one test's examples may take (about 50 s in all on the project's 2-core machine): past
    them an example is still drawn, so that Hypothesis sees the same draws, but not run. Once an
    example has failed there is no limit, so that Hypothesis can shrink it."""

    failed = False

    def __init__(self, seconds: float):
        self.seconds, self.start = seconds, None

    def over(self) -> bool:
        if self.start is None:
            self.start = time.monotonic()
        return not Budget.failed and time.monotonic() - self.start > self.seconds


def check(text: str, folder) -> None:
    outcome = examine(text, folder)
    if outcome.kind == "crash":
        Budget.failed = True
        raise AssertionError(f"stage {outcome.stage}: {outcome.error}\ntext: {text!r}\n{outcome.detail}")


BUDGETS = {"lark": Budget(20), "derived": Budget(8), "mutants": Budget(20)}


def _grammar_texts():
    return st.one_of(from_lark(grammar(), start="start", explicit=lark_terminals()),
                     from_lark(grammar(), start="start", explicit=lark_terminals(hostile=True)))


# from_lark is slow (about 40 ms an example here, a third of them discarded for depth): a few hundred.
@settings(FUZZ, max_examples=300)
@given(_grammar_texts())
def test_texts_of_the_grammar_end_in_a_spec_error_or_a_working_module(folder, text):
    if not BUDGETS["lark"].over():
        check(text, folder)


@settings(FUZZ, max_examples=600)
@given(st.integers(0, 2 ** 32 - 1))
def test_derivations_of_the_grammar_end_in_a_spec_error_or_a_working_module(folder, seed):
    """The walker benchmarks/fuzz.py uses (names called are mostly functions, more lines), from a seed:
    drawing its hundreds of choices through Hypothesis would cost ten times more."""
    text = derive(random.Random(seed))
    if not BUDGETS["derived"].over():
        check(text, folder)


@settings(FUZZ, max_examples=2500)
@given(st.data())
def test_mutated_specs_end_in_a_spec_error_or_a_working_module(folder, data):
    text = mutant(DataPicker(data))
    if not BUDGETS["mutants"].over():
        check(text, folder)


@pytest.mark.parametrize("name,text", seeds(), ids=[name for name, _ in seeds()])
def test_every_seed_runs_through_every_stage(folder, name, text):
    """The mutations' starting points, unmutated: each ends as a valid spec or a clean SpecError."""
    check(text, folder)


# What benchmarks/fuzz.py found in 100,000 cases after sequences and blocks came in, kept as rows.
FOUND = {
    "a sequence input as the only output (no loop left to write)":
        "input x[T, 3]\nh[8] = tanh(W·x + W_hh·prev(h))\noutput x\n",
    "a block given a parameter (the same for every sample)":
        "block b {\n    input u[8]\n    y = u + W·u\n}\ninput x[4]\nr = use b\ny[1] = V·r(h0) + c\n",
    "a block's output of a million units (drawing counted every connection first)":
        "block act {\n    input u\n    y = tanh(A·u + a)\n}\ninput x[5]\nf = use act\nh[3] = f(x)\nout = V·h\n"
        "output out[1000000]\n",
}


@pytest.mark.parametrize("text", list(FOUND.values()), ids=list(FOUND))
def test_what_the_big_fuzzer_found(folder, text):
    check(text, folder)
