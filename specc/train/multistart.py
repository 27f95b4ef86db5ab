"""Restarts, batched: R fits from R starting points as one computation, and the default method.

:func:`minimize` is a variable-metric (BFGS) minimiser in the form J. C. Nash gives it
(*Compact Numerical Methods for Computers*, Algorithm 21), the method of R's ``optim(method =
"BFGS")`` and of nnet, written here for a matrix of parameter vectors ``[R, n]``: every restart
keeps its own point, inverse-Hessian approximation ``[R, n, n]``, step length and stopping state,
and one call of the criterion evaluates the trial points of every restart still running (the
engine's ``evaluate``: the NumPy tape's or the compiled criterion's). Per restart, an iteration is:

- the direction ``d = -H g``; when it is not downhill, ``H`` is reset to the identity and the
  direction becomes steepest descent; when that is not downhill either (``g = 0``), the restart
  is done;
- a backtracking line search from step 1: a trial point is accepted when its criterion and
  gradient are finite and it lowers the criterion by at least ``ACCTOL · step · (g·d)``; otherwise
  the step is multiplied by ``STEP_SHRINK``. When the step has become too small to move the point
  (``10 + x`` unchanged in every coordinate) the search has failed: from a fresh ``H`` the restart
  is done, else ``H`` is reset and the iteration retried;
- after an accepted step ``s`` with gradient change ``y``, the BFGS update of ``H`` when ``s·y > 0``,
  else a reset; ``H`` is also reset after ``2n`` updates in a row;
- stopping: the criterion is at most ``abstol`` (done at once), or the step improved it by at most
  ``reltol · (|f| + reltol)``: from a fresh ``H`` the restart is done, else ``H`` is reset and it
  goes on; or ``max_iter`` accepted steps (not converged).

:func:`run` fits a model this way from its own values and ``R - 1`` draws of the spec's
initialisers, and keeps the best; :func:`choose` is the rule ``specc.fit`` follows when no
optimizer is given. docs/training.md ("The default method", "Restarts") documents both.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..options import check as check_values  # not `options`: resolve() has a dict of that name
from ..errors import SpecError

STEP_SHRINK = 0.2  # a rejected step is multiplied by this
ACCTOL = 1e-4  # sufficient decrease: f(x + t·d) <= f(x) + ACCTOL · t · (g·d)
MOVED = 10.0  # a trial point has moved when MOVED + x changes in some coordinate

# The default method (specc.fit without an optimizer): see choose().
SMALL_DATA = 100_000  # rows × parameters at most this: full-batch BFGS with restarts
MAX_BFGS_PARAMETERS = 500  # and at most this many parameters (H is n × n per restart)
DEFAULT_RESTARTS = 10
MAX_HESSIAN_BYTES = 2e9  # restarts × parameters² × 8 bytes: refused beyond this
DEFAULT_BFGS = dict(max_iter=5000, abstol=None, reltol=1e-10)  # the small-data path's stopping
ADAM_BATCH, ADAM_STEPS = 64, 20_000  # the large-data path: mini-batches, about this many steps


# ---------------------------------------------------------------- the batched minimiser
@dataclass
class Batch:
    """The outcome of :func:`minimize`, one entry per restart."""
    x: np.ndarray  # [R, n] final points
    f: np.ndarray  # [R] the criterion there (nan: not finite at its start)
    iterations: np.ndarray  # [R] accepted steps
    evaluations: np.ndarray  # [R] criterion evaluations
    converged: np.ndarray  # [R] a stopping rule ended it (not max_iter, not a non-finite start)
    status: list[str]
    histories: list[np.ndarray]  # per restart: f at the start and after each accepted step


RUNNING, CONVERGED, MAX_ITER, NOT_FINITE = 0, 1, 2, 3
STATUS = {CONVERGED: "converged", MAX_ITER: "max_iter", NOT_FINITE: "not finite at its start"}


def minimize(evaluate, x0: np.ndarray, *, max_iter: int = 100, abstol: float | None = None,
             reltol: float | None = 1e-8, callback=None) -> Batch:
    """Minimise from every row of ``x0`` ``[R, n]`` at once; ``evaluate(X) -> (f [k], G [k, n])``
    for any ``k`` rows. ``abstol``/``reltol`` None turn their rule off. See the module's text.

    Each rule acts on the rows it concerns, selected by a slice while it concerns every row (views,
    no copies of H) and by an index array otherwise; a round is a few dozen NumPy calls however
    many restarts run, and the evaluation skips the finished ones."""
    x = np.array(x0, dtype=np.float64, ndmin=2)
    R, n = x.shape
    abstol = -math.inf if abstol is None else abstol
    reltol = 0.0 if reltol is None else reltol
    with np.errstate(all="ignore"):
        f, g = (np.array(v, dtype=np.float64) for v in evaluate(x))
    evaluations = np.ones(R, dtype=np.int64)
    iterations = np.zeros(R, dtype=np.int64)
    active = np.isfinite(f) & np.isfinite(g).all(1)
    state = np.where(active, RUNNING, NOT_FINITE)
    f[~active], g[~active] = math.nan, 0.0
    H = np.zeros((R, n, n))
    fresh = np.ones(R, dtype=bool)  # H is the identity, with no update since it was reset
    updates = np.zeros(R, dtype=np.int64)  # BFGS updates since the last reset
    d, trial = np.zeros((R, n)), x.copy()
    slope, step = np.zeros(R), np.ones(R)
    history = np.full((min(max_iter, 1023) + 1, R), np.nan)
    history[0] = f
    eye, rows = np.eye(n), np.arange(R)

    def stop(sel, why):
        state[sel], active[sel] = why, False

    def new_directions(sel):
        """A downhill direction and its first trial point (step 1) for the restarts ``sel``, from a
        reset H where needed; a restart that cannot move even along -g is done."""
        while True:
            reset = sel[fresh[sel]] if isinstance(sel, np.ndarray) else rows[fresh]
            if len(reset):
                H[reset] = eye
            d[sel] = -np.matmul(H[sel], g[sel, :, None])[:, :, 0]
            slope[sel] = (d[sel] * g[sel]).sum(1)
            trial[sel] = x[sel] + d[sel]
            step[sel] = 1.0
            stuck = ~(slope[sel] < 0) | (MOVED + trial[sel] == MOVED + x[sel]).all(1)
            if not stuck.any():
                return
            stuck = rows[sel][stuck]
            stop(stuck[fresh[stuck]], CONVERGED)  # a stationary point (or one the arithmetic cannot leave)
            sel = stuck[~fresh[stuck]]
            fresh[sel], updates[sel] = True, 0  # retry from steepest descent

    if max_iter < 1:
        stop(rows[active], MAX_ITER)
    new_directions(rows[active])
    with np.errstate(all="ignore"):
        while active.any():
            run = slice(None) if active.all() else rows[active]
            F, G = evaluate(trial[run])
            evaluations[run] += 1
            ok = np.isfinite(F) & np.isfinite(G).all(1) & (F <= f[run] + ACCTOL * step[run] * slope[run])
            if ok.all():
                good, F0, G0 = run, F, G
            else:
                good, F0, G0 = rows[run][ok], F[ok], G[ok]
                bad = rows[run][~ok]  # rejected: shrink the step; too small a step to move ends the search
                step[bad] *= STEP_SHRINK
                trial[bad] = x[bad] + step[bad, None] * d[bad]
                failed = bad[(MOVED + trial[bad] == MOVED + x[bad]).all(1)]
                stop(failed[fresh[failed]], CONVERGED)
                failed = failed[~fresh[failed]]
                if len(failed):
                    fresh[failed], updates[failed] = True, 0
                    new_directions(failed)
            if len(F0):
                f_old = f[good]
                tiny = np.abs(f_old - F0) <= reltol * (np.abs(f_old) + reltol)
                done = (F0 <= abstol) | (tiny & fresh[good])
                s, y = trial[good] - x[good], G0 - g[good]
                x[good], f[good], g[good] = trial[good], F0, G0
                iterations[good] += 1
                if iterations.max() >= len(history):
                    history = np.vstack([history, np.full((len(history), R), np.nan)])
                history[iterations[good], rows[good]] = F0
                fresh[good] = False
                limit = ~done & (iterations[good] >= max_iter)
                if done.any() or limit.any():
                    stop(rows[good][done], CONVERGED)
                    stop(rows[good][limit], MAX_ITER)
                    going = ~(done | limit)
                    good, s, y, tiny = rows[good][going], s[going], y[going], tiny[going]
                reset = _bfgs_update(H, good, s, y, ~tiny, updates, n)  # a tiny improvement: reset
                fresh[reset], updates[reset] = True, 0
                if len(y):
                    new_directions(good)
            if callback is not None:
                callback(int(iterations.max()), float(np.nanmin(f)) if not np.isnan(f).all() else math.nan)
    histories = [history[:iterations[k] + 1, k].copy() for k in range(R)]
    return Batch(x, f, iterations, evaluations, state == CONVERGED, [STATUS[int(v)] for v in state], histories)


def _bfgs_update(H, sel, s, y, wanted, updates, n):
    """``H += ((1 + y'Hy / s'y) s s' - H y s' - s y'H) / s'y`` on the restarts ``sel`` (a slice or
    indices; ``s``, ``y`` their rows) that ``wanted`` one and have curvature ``s'y > 0``. Returns the
    restarts whose H is to be reset: the others (not wanted, or not curved), and those that have had
    2n updates in a row."""
    sy = (s * y).sum(1)
    curved = wanted & (sy > 0)
    if curved.any():
        b = np.where(curved, 1.0 / np.where(curved, sy, 1.0), 0.0)
        Hy = np.matmul(H[sel], y[:, :, None])[:, :, 0]
        a = b * (1.0 + b * (y * Hy).sum(1))
        # a s s' - b (Hy s' + s Hy') as one rank-2 product: [s, Hy] @ [a s - b Hy, -b s]'
        left, right = np.empty((len(s), n, 2)), np.empty((len(s), 2, n))
        left[:, :, 0], left[:, :, 1] = s, Hy
        right[:, 0], right[:, 1] = a[:, None] * s - b[:, None] * Hy, -b[:, None] * s
        H[sel] += np.matmul(left, right)
        updates[sel] += curved
    rows = np.arange(len(H))[sel]
    return rows[~curved | (updates[sel] > 2 * n)]


# ---------------------------------------------------------------- the default method
FIRST_ORDER_OPTIONS = ("epochs", "batch_size", "lr", "momentum")
QUASI_NEWTON_OPTIONS = ("max_iter", "restarts", "engine")
BATCHED_ENGINES = (None, "compiled", "numpy")  # engines that run restarts together (None: the default)


def choose(rows: int, parameters: int, given: dict, random: str | None = None, engine: str = "compiled",
           stopping: dict | None = None) -> dict:
    """The method for ``specc.fit`` without an optimizer: resolved settings (``optimizer``, its
    defaults, ``restarts``, ``method``: the choice in words), then checked like given ones.

    Small data (rows × parameters ≤ SMALL_DATA, parameters ≤ MAX_BFGS_PARAMETERS): bfgs with
    DEFAULT_RESTARTS batched restarts and DEFAULT_BFGS's stopping. Otherwise adam in mini-batches of
    ADAM_BATCH rows for about ADAM_STEPS steps (10 to 1000 epochs). An option only one family takes
    decides: ``epochs``, ``batch_size``, ``lr`` or ``momentum`` give adam with today's defaults (full
    batch, 1000 epochs); ``max_iter``, ``restarts`` or ``engine`` give bfgs (one start, as before,
    for the engines ``autograd`` and ``nnet``). Options of both families are refused. A spec with a
    ``random`` operation (dropout) has no deterministic criterion: adam, whatever the size.
    ``engine`` and ``stopping``: bfgs's engine when none is given, and its stopping (default
    DEFAULT_BFGS); a spec with step nodes gets ``autograd`` and :data:`specc.train.sequences.STEP_BFGS`,
    one start unless ``restarts`` is given (:func:`specc.train.sequences.bfgs_defaults`).
    """
    first = [k for k in FIRST_ORDER_OPTIONS if (given.get(k) if k == "momentum" else given.get(k) is not None)]
    quasi = [k for k in QUASI_NEWTON_OPTIONS if given.get(k) is not None]
    if first and quasi:
        raise SpecError(f"{first[0]} is an option of the first-order optimizers and {quasi[0]} of bfgs: "
                        f"name the optimizer (optimizer='adam' or 'bfgs')")
    if first:
        return {"optimizer": "adam", "method": f"adam ({first[0]} given)"}
    size = f"{rows} rows × {parameters} parameters"
    small = rows * parameters <= SMALL_DATA and parameters <= MAX_BFGS_PARAMETERS and random is None
    if quasi or small:
        why = f"small data: {size}" if small else f"{quasi[0]} given"
        engine, restarts = given.get("engine") or engine, given.get("restarts")
        if restarts is None and engine in BATCHED_ENGINES:
            restarts = DEFAULT_RESTARTS
        stopping = stopping or DEFAULT_BFGS
        chosen = {k: stopping[k] if given.get(k) is None else given[k] for k in stopping}
        return {"optimizer": "bfgs", "restarts": restarts, "engine": engine, **chosen,
                "method": f"bfgs ×{restarts} restarts ({why})" if (restarts or 1) > 1 else
                f"bfgs, one start ({why})"}
    batch = ADAM_BATCH if rows > ADAM_BATCH else None
    epochs = min(1000, max(10, math.ceil(ADAM_STEPS / (math.ceil(rows / batch) if batch else 1))))
    return {"optimizer": "adam", "batch_size": batch, "epochs": epochs,
            "method": f"adam, {f'mini-batches of {batch}' if batch else 'full batch'}, {epochs} epochs "
                      f"({f'{random}: random in training' if random else 'large data'}: {size})"}


def resolve(model: torch.nn.Module, data, options: dict, random: str | None = None):
    """For ``specc.fit`` without an optimizer: read the data (float64 tensors, returned) and fill
    ``options`` with :func:`choose`'s method (``random``: the spec's random operation, see
    :func:`random_operation`). With an optimizer: nothing (returns None)."""
    if options["optimizer"] is not None:
        return None
    from .data import tensors_for
    tensors = tensors_for(model, data, dtype=torch.float64, labels=options.get("labels", False))
    from .sequences import bfgs_defaults
    options.update(choose(len(next(iter(tensors.values()))), sum(p.numel() for p in model.parameters()), options,
                          random, *bfgs_defaults(model)))
    return tensors


def random_operation(model: torch.nn.Module) -> str | None:
    """The first operation of the spec that is random in training mode (dropout), or None."""
    from ..lower import spec_graph
    from ..ops import OPS
    graph = spec_graph(model)
    return next((graph.nodes[n]["op"] for n in graph.topological()
                 if graph.nodes[n]["kind"] == "op" and OPS[graph.nodes[n]["op"]].random), None)


def check_restarts(restarts, optimizer: str, engine: str | None) -> None:
    """Refuse restarts where they mean nothing or cannot run batched."""
    if restarts is None:
        return
    check_values({"restarts": restarts})  # the one wording (specc/options.py)
    if optimizer != "bfgs":
        raise SpecError(f"restarts are run by bfgs (batched, from the spec's initialisers); '{optimizer}' fits "
                        f"from one start: give optimizer='bfgs' or no optimizer")
    if engine not in BATCHED_ENGINES:
        raise SpecError(f"restarts run batched on the engines {' and '.join(map(repr, BATCHED_ENGINES[1:]))}; "
                        f"engine '{engine}' fits one start at a time: leave the engine out")


# ---------------------------------------------------------------- starting points
def restart_seeds(restarts: int, seed: int | None) -> list[int | None]:
    """The seed each restart's start is drawn with: None for the first (the model's own values),
    then ``restarts - 1`` seeds drawn from ``seed`` (from torch's global generator when None)."""
    generator = torch.Generator().manual_seed(seed) if seed is not None else None
    drawn = torch.randint(0, 2 ** 62, (restarts - 1,), generator=generator).tolist() if restarts > 1 else []
    return [None] + drawn


def starting_points(model: torch.nn.Module, seeds: list[int | None]) -> np.ndarray:
    """``[R, n]`` float64: the model's current values, then ``model.reset_parameters()`` (the spec's
    initialisers) under ``torch.manual_seed(seed)`` for each further seed. The model keeps its values
    and torch's global generator its state."""
    params = list(model.parameters())
    vector = lambda: torch.nn.utils.parameters_to_vector(params).detach().double().numpy().copy()  # noqa: E731
    own = vector()
    points = [own]
    if len(seeds) > 1:
        if not hasattr(model, "reset_parameters"):
            raise SpecError("restarts draw starting points with the module's reset_parameters(), which "
                            f"{type(model).__name__} lacks: load the spec with specc.load")
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            for seed in seeds[1:]:
                torch.manual_seed(seed)
                model.reset_parameters()
                points.append(vector())
            torch.nn.utils.vector_to_parameters(torch.from_numpy(own).to(params[0].dtype), params)
    return np.stack(points)


# ---------------------------------------------------------------- a fit that diverged
def refuse_divergence(model: torch.nn.Module, run, s: dict, start_values: list[torch.Tensor],
                      criterion=None) -> None:
    """A fit whose criterion became NaN or infinite (in its history, or at its end) or whose parameters
    did is an error; the model gets its starting values back, so nothing (no ``--out`` file) is written
    from it. A bfgs fit's values come from an engine in float64: with ``criterion``, the module's own
    criterion is checked too, in the model's dtype, as it would be saved and used."""
    step = next((i for i, v in enumerate(run.history) if not math.isfinite(v)), None)
    param = next(((name, "nan" if bool(p.isnan().any()) else "inf") for name, p in model.named_parameters()
                  if not bool(torch.isfinite(p).all())), None)
    final = run.loss
    if step is None and param is None and math.isfinite(final) and criterion is not None and s["optimizer"] == "bfgs":
        from .checks import criterion_value
        final = criterion_value(model, criterion)
        final = run.loss if final is None else final
    if step is None and param is None and math.isfinite(final):
        return
    with torch.no_grad():
        for p, value in zip(model.parameters(), start_values):
            p.copy_(value)
    unit = "epoch" if s["epochs"] else "iteration"
    hint = f": try a smaller learning rate than {s['lr']:g}" if s["lr"] is not None else \
        ": fit in float64" if s["dtype"] != "float64" else ""
    if step is not None or not math.isfinite(run.loss):
        step, value = (step, run.history[step]) if step is not None else (len(run.history), run.loss)
        what = f"the criterion ({s['loss']}) became {value} at {unit} {step + 1}"
    elif param is not None:
        what = f"parameter '{param[0]}' became {param[1]}"
        what += f" in {s['dtype']}" if s["dtype"] != "float64" else ""
    else:
        what = f"the criterion ({s['loss']}) is {final} in {s['dtype']} at the fitted values"
    raise SpecError(f"the fit diverged: {what} ({s['optimizer']}); the model keeps its starting values{hint}")


# ---------------------------------------------------------------- a fit with restarts
KINKS = ("relu", "leaky_relu", "abs")  # functions whose slope jumps


def criterion_scale(graph, reduction: str, rows: int) -> float:
    """What the minimiser multiplies the criterion by: the same minimiser, but H = I (each restart's
    start, and every reset) takes steps on that scale. A smooth spec's criterion is summed over rows
    (for mse, nnet's SSE: long first steps, which cross the flat valleys of logistic and tanh nets);
    a spec with a kink (relu, leaky_relu, abs) is averaged over rows, as long steps there switch
    units off for good (measured: docs/training.md, "Restarts")."""
    wanted = graph.ancestors(graph.graph["outputs"])
    kinked = any(graph.nodes[n].get("op") in KINKS for n in wanted if graph.nodes[n]["kind"] == "op")
    if kinked:
        return 1.0 / rows if reduction == "sum" else 1.0
    return 1.0 if reduction == "sum" else float(rows)


def run(model: torch.nn.Module, criterion, settings: dict, progress):
    """Fit ``model`` with ``settings["restarts"]`` batched restarts (see :func:`minimize`) and leave
    the best in it. Returns ``(Run, restarts)``: the kept restart's run, and one dict per restart.
    The minimiser sees the criterion times :func:`criterion_scale`; values are reported unscaled."""
    from ..lower import spec_graph
    from .engines import ENGINES
    from .optimizers import Run
    objective = ENGINES[settings["engine"]](model, criterion)
    settings["engine"] = objective.name  # the one that runs: the compiled engine may have fallen back
    scale = criterion_scale(spec_graph(model), criterion.loss.reduction, criterion.rows)

    def evaluate(X):
        f, G = objective.evaluate(X)
        return scale * f, scale * G

    seeds = restart_seeds(settings["restarts"], settings["seed"])
    size = len(seeds) * objective.size ** 2 * 8  # bytes of the inverse Hessians
    if size > MAX_HESSIAN_BYTES:
        raise SpecError(f"{len(seeds)} restarts of bfgs on {objective.size} parameters need {size / 1e9:.1f} GB for "
                        f"their inverse Hessians (at most {MAX_HESSIAN_BYTES / 1e9:g} GB): use fewer restarts or "
                        f"a first-order optimizer (adam)")
    abstol = None if settings["abstol"] is None else settings["abstol"] * scale
    shown = getattr(progress, "bar", True) is not None  # no bar (not a terminal): no per-round callback
    callback = (lambda it, f: progress(it, f / scale)) if shown else None
    options = dict(max_iter=settings["max_iter"], abstol=abstol, reltol=settings["reltol"], callback=callback)
    if hasattr(objective, "minimize"):  # the compiled criterion: the same method, its loop in C too
        batch = objective.minimize(starting_points(model, seeds), scale=scale, **options)
    else:
        batch = minimize(evaluate, starting_points(model, seeds), **options)
    finite = np.isfinite(batch.f)
    if not finite.any():  # the first start is the model's values: name what is not finite there
        from .checks import expression_cause
        cause = expression_cause(model, criterion)[0]
        raise SpecError(f"the criterion ({settings['loss']}) is not finite at any of the {len(seeds)} starting "
                        f"points" + (f"; at the first (the model's values): {cause}" if cause else
                                     ": check the data's scale and the spec's functions (log, sqrt, division)"))
    best = int(np.nanargmin(batch.f))
    with torch.no_grad():
        params = list(model.parameters())
        torch.nn.utils.vector_to_parameters(torch.from_numpy(batch.x[best]).to(params[0].dtype), params)
    restarts = [{"loss": float(batch.f[k]) / scale if finite[k] else None, "iterations": int(batch.iterations[k]),
                 "evaluations": int(batch.evaluations[k]), "converged": bool(batch.converged[k]),
                 "status": batch.status[k], "seed": seeds[k], "kept": k == best} for k in range(len(seeds))]
    kept = Run((batch.histories[best] / scale).tolist(), int(batch.iterations[best]),
               bool(batch.converged[best]), int(batch.evaluations.sum()), float(batch.f[best]) / scale)
    return kept, restarts
