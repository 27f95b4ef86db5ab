"""The rules for the numbers a user passes to ``specc.fit``, ``specc.draw`` and the command line.

One table, one row per option: what values are allowed, in the words every refusal uses. The API
and the CLI check the same rows, so ``fit(lr=-1)`` says ``lr must be a positive finite number, not
-1`` and ``specc train --lr -1`` says the same of ``--lr``. The CLI checks its options before it
reads the spec or the data, so a bad value never costs a fit. Standard library only: ``specc draw``
checks its options without importing torch or numpy.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Callable, Mapping

from .errors import SpecError

# Counts beyond these are mistakes, not requests: 10⁹ epochs or iterations would run for days, and
# each restart is a whole BFGS run with its own n × n matrix.
MAX_COUNT = 10 ** 9
MAX_RESTARTS = 10_000
MAX_SEED = 2 ** 64 - 1  # torch.manual_seed takes at most 64 bits


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _finite(low: float, strict: bool) -> Callable[[object], bool]:
    """A finite number above ``low`` (``strict``) or at least ``low``."""
    def test(value) -> bool:
        if not _real(value) or not math.isfinite(value):
            return False
        return value > low if strict else value >= low
    return test


def _whole(low: int, high: int) -> Callable[[object], bool]:
    def test(value) -> bool:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool) and low <= value <= high
    return test


def _width_range(value) -> bool:
    """Two finite numbers with 0 < MIN <= MAX."""
    try:
        low, high = value
    except (TypeError, ValueError):
        return False
    return _finite(0, True)(low) and _finite(0, True)(high) and low <= high


@dataclass(frozen=True)
class Rule:
    allowed: str  # completes "NAME must be …"
    test: Callable[[object], bool]


POSITIVE = "a positive finite number"
NON_NEGATIVE = "a finite number of at least 0"


def _counted(low: int, high: int, high_text: str | None = None) -> Rule:
    return Rule(f"a whole number from {low} to {high_text or high}", _whole(low, high))


# Each option once, by its Python name; the CLI's flag is ``--`` + the name with ``-`` for ``_``.
RULES: dict[str, Rule] = {
    # specc.fit / specc train
    "lr": Rule(POSITIVE, _finite(0, True)),
    "momentum": Rule(NON_NEGATIVE, _finite(0, False)),
    "decay": Rule(NON_NEGATIVE, _finite(0, False)),
    # -inf: no abstol rule, as R's optim (abstol = -Inf) and specc.train.bfgs write it
    "abstol": Rule(NON_NEGATIVE + ", or -inf (no rule)", lambda v: _finite(0, False)(v) or v == -math.inf),
    "reltol": Rule(NON_NEGATIVE, _finite(0, False)),
    "epochs": _counted(1, MAX_COUNT),
    "max_iter": _counted(0, MAX_COUNT),  # 0: evaluate the start only, as R's optim
    "batch_size": _counted(1, MAX_COUNT),
    "restarts": _counted(1, MAX_RESTARTS),
    "seed": _counted(0, MAX_SEED, "2**64 - 1"),
    "val_split": Rule("a number greater than 0 and less than 1", lambda v: _finite(0, True)(v) and v < 1),
    "early_stopping": _counted(1, MAX_COUNT),  # a patience, in epochs (first-order) or iterations (lbfgs)
    # specc train --nproc (specc/train/distributed.py): processes per machine, machines, this machine's number
    "nproc": _counted(1, 4096),
    "nnodes": _counted(1, 4096),
    "node_rank": _counted(0, 4095),
    # start_from / specc train --rang
    "rang": Rule(POSITIVE, _finite(0, True)),
    # specc.draw, write_drawing / specc draw
    "dpi": Rule(POSITIVE, _finite(0, True)),
    "max_units": _counted(1, MAX_COUNT),
    "width_range": Rule("two finite numbers MIN MAX with 0 < MIN <= MAX", _width_range),
    # every command that builds an IR (specc/limits.py): torch's sizes are int64
    "max_size": _counted(1, 2 ** 63 - 1, "2**63 - 1"),
    "max_elements": _counted(1, 2 ** 63 - 1, "2**63 - 1"),
}


def flag(name: str) -> str:
    """The command line's spelling of an option: ``max_iter`` → ``--max-iter``."""
    return "--" + name.replace("_", "-")


def shown(value) -> str:
    """A value as the user wrote it: ``-1`` for -1.0, ``inf``, ``nan``, ``5 0.6`` for a pair."""
    if isinstance(value, (tuple, list)):
        return " ".join(map(shown, value))
    if not _real(value):
        return repr(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    number = float(value)
    return str(int(number)) if number.is_integer() and abs(number) < 1e16 else repr(number)


def check(values: Mapping[str, object], cli: bool = False) -> None:
    """Refuse the first value (``None``: not given) that breaks its row of :data:`RULES`, naming the
    option as the caller spelt it (``--max-iter`` with ``cli``, else ``max_iter``)."""
    for name, value in values.items():
        rule = RULES[name]
        if value is not None and not rule.test(value):
            raise SpecError(f"{flag(name) if cli else name} must be {rule.allowed}, not {shown(value)}")
