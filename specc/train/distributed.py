"""Data-parallel training with PyTorch DDP: ``specc train --nproc N`` and ``specc.fit`` in a process group.

One part per role a process plays:

- the launcher (:func:`launch`): ``specc train … --nproc N`` runs the same command, minus its launch
  options, in N processes per machine under torch's own elastic launcher (``torch.distributed.run``,
  what ``torchrun`` runs), and reports a failed worker in one line that names its rank;
- the worker (:func:`join`): a ``specc train`` started by a launcher (this one or the user's own
  ``torchrun``) joins the process group, gloo on CPU and NCCL on CUDA; ranks other than 0 print and
  write nothing, and their error, if any, goes to the launcher;
- the fit (:func:`shard`): inside a process group of several processes, ``specc.fit`` trains
  data-parallel. Every rank draws the same permutation of the rows each epoch (one seed for all),
  cuts it into the same global mini-batches, and takes every N-th row of each (DistributedSampler's
  interleaving); DistributedDataParallel averages the gradients. Each rank's loss is weighted so that
  the averaged gradient is the gradient of the one-process criterion on the whole global batch: a
  short last batch and a summed loss (``sse``) step exactly as in one process, weight decay counts once.

``--batch-size`` is per process, as with DistributedSampler: N processes with batch B make the same
updates, to rounding, as one process with batch N·B; the fit's settings report that global batch.
Full-batch methods (bfgs, lbfgs, the compiled criterion) run in one process and are refused: their
work is one criterion over all rows, which DDP's per-batch gradient averaging does not split.
"""
from __future__ import annotations

import atexit
import copy
import errno
import inspect
import io
import json
import os
import socket
import sys
import time

import torch

from .. import options
from ..errors import SpecError

LAUNCH_OPTIONS = ("--nproc", "--nnodes", "--node-rank", "--rdzv-endpoint")
ENVIRONMENT = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")  # what torch's launchers set (env://)


def full_batch_refusal(optimizer: str, chosen: bool = False) -> str:
    how = " (chosen for this data)" if chosen else ""
    return (f"'{optimizer}'{how} is a full-batch method that runs in one process: data-parallel training "
            f"(--nproc) needs a mini-batch optimizer, --optimizer adam or sgd")


# ---------------------------------------------------------------- launcher
def check_launch(args) -> None:
    """Refuse bad launch options before anything starts, each in one line."""
    options.check({"nproc": args.nproc, "nnodes": args.nnodes, "node_rank": args.node_rank}, cli=True)
    if args.nproc is None:
        given = next(flag for flag, value in (("--nnodes", args.nnodes), ("--node-rank", args.node_rank),
                                              ("--rdzv-endpoint", args.rdzv_endpoint)) if value is not None)
        raise SpecError(f"{given} is an option of data-parallel training: give --nproc N too")
    nnodes = args.nnodes or 1
    if args.node_rank is not None and args.node_rank >= nnodes:
        raise SpecError(f"--node-rank must be below --nnodes ({nnodes}): machines are numbered 0 to "
                        f"{nnodes - 1}, not {args.node_rank}")
    if nnodes > 1 and args.rdzv_endpoint is None:
        raise SpecError(f"--nnodes {nnodes} needs --rdzv-endpoint HOST:PORT, machine 0's address and a free port")
    if args.rdzv_endpoint is not None:
        endpoint_parts(args.rdzv_endpoint)
    if args.optimizer:
        from .optimizers import OPTIMIZERS
        if OPTIMIZERS[args.optimizer].full_batch:
            raise SpecError(full_batch_refusal(args.optimizer))
    for flag, value in (("--restarts", args.restarts), ("--engine", args.engine)):
        if value is not None:
            raise SpecError(f"{flag} is an option of bfgs, which runs in one process: data-parallel training "
                            f"(--nproc) runs adam or sgd")


def endpoint_parts(endpoint: str) -> tuple[str, int]:
    host, colon, port = endpoint.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError(f"--rdzv-endpoint must be HOST:PORT with a port from 1 to 65535, not {endpoint!r}")
    return host.strip("[]"), int(port)


def refuse_port_in_use(endpoint: str) -> None:
    """Machine 0 serves the rendezvous at the endpoint: a port already taken there is one clear line,
    not a launcher's traceback. A host that is not this machine's cannot be bound here: not checked."""
    host, port = endpoint_parts(endpoint)
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except OSError:
        raise SpecError(f"--rdzv-endpoint {endpoint}: unknown host '{host}'") from None
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as err:
            if err.errno == errno.EADDRINUSE:
                raise SpecError(f"--rdzv-endpoint {endpoint}: port {port} is in use on this machine; "
                                f"choose a free port") from None


def worker_argv(argv: list[str], parser) -> list[str]:
    """The command line each worker runs: this one without the launch options (however abbreviated)."""
    known = [o for action in parser._actions for o in action.option_strings if o.startswith("--")]
    kept, tokens = [], iter(argv)
    for token in tokens:
        if token == "--":
            kept += [token, *tokens]
            break
        name = token.split("=", 1)[0]
        matches = [name] if name in known else [o for o in known if token.startswith("--") and o.startswith(name)]
        if len(matches) == 1 and matches[0] in LAUNCH_OPTIONS:
            if "=" not in token:
                next(tokens, None)  # its value
            continue
        kept.append(token)
    return kept


def launch(args) -> int:
    """``specc train … --nproc N``: N workers per machine under torch.distributed.run; 0 when all succeed."""
    check_launch(args)
    nnodes = args.nnodes or 1
    if args.rdzv_endpoint is not None and args.node_rank in (None, 0):
        refuse_port_in_use(args.rdzv_endpoint)
    command = worker_argv(args.argv, args.parser)
    if args.optimizer is None:
        command += ["--optimizer", "adam"]  # the default would be chosen from the data, maybe bfgs: one process
    launcher = ["--nproc-per-node", str(args.nproc), "--max-restarts", "0", "--monitor-interval", "0.1"]
    if args.rdzv_endpoint is None:
        launcher.append("--standalone")  # one machine: a rendezvous on a free port of localhost
    else:
        launcher += ["--nnodes", str(nnodes), "--rdzv-endpoint", args.rdzv_endpoint]
        launcher += ["--rdzv-backend", "static", "--node-rank", str(args.node_rank)] \
            if args.node_rank is not None else ["--rdzv-backend", "c10d"]
    # Threads per worker: the machine's cores shared out (torchrun would set 1 and say so at length).
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // args.nproc)))
    os.environ[LAUNCHED] = "1"
    import logging

    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    logging.getLogger("torch.distributed").setLevel(logging.CRITICAL)  # failures are reported below, once
    try:
        run.run(run.parse_args([*launcher, "--module", "specc", *command]))
    except ChildFailedError as failed:
        return report_failures(failed.failures)
    except Exception as err:  # the rendezvous or the agent itself: one line, not torch's traceback
        raise SpecError(f"launching {args.nproc} processes failed: {first_line(str(err)) or type(err).__name__}")
    return 0


def first_line(text: str) -> str:
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    return next((line for line in lines if "error:" in line), lines[-1] if lines else "")


def report_failures(failures: dict) -> int:
    """One line per failed worker that caused the failure, naming its rank and why: ranks stopped by
    the launcher, or that lost a peer, only when nothing else failed. Rank 0 printed its own error."""
    why = {}
    for rank, failure in failures.items():
        message = failure.message if isinstance(failure.message, str) else failure.message.get("message", "")
        if failure.exitcode < 0:
            why[rank] = f"killed by signal {failure.signal_name()}"
        elif message and not message.startswith("To enable traceback"):
            why[rank] = first_line(message).removeprefix(f"specc: rank {rank}: ")
        else:
            why[rank] = f"exit status {failure.exitcode}"
    causes = [r for r in sorted(why) if failures[r].exitcode > 0 and not why[r].startswith(LOST)] or sorted(why)
    shown = {why[0]} if 0 in causes and failures[0].exitcode == 1 and "error:" in why[0] else set()
    for rank in causes:
        if why[rank] not in shown:
            print(f"specc: rank {rank} failed: {why[rank]}", file=sys.stderr)
            shown.add(why[rank])
    return max((f.exitcode for f in failures.values() if f.exitcode > 0), default=1)


# ---------------------------------------------------------------- worker
LAUNCHED = "SPECC_LAUNCHED"  # set by launch(): the workers' errors go to it, which reports them once
LOST = "lost contact with another rank"  # a consequence of another rank's failure, not a cause


def join(args) -> bool:
    """Join the process group when started by a launcher (torch's env:// variables are set); whether
    this process is the one that writes and prints (rank 0, or a run without a group)."""
    if not all(name in os.environ for name in ENVIRONMENT) or int(os.environ["WORLD_SIZE"]) <= 1:
        return True
    import torch.distributed as dist
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    cuda = torch.cuda.is_available() and getattr(args, "device", None) != "cpu"
    if cuda:
        torch.cuda.set_device(local_rank)  # "cuda" is this rank's GPU from here on
    record = _record_output(args, rank)
    sys.excepthook = _one_line_exceptions(rank, record)
    dist.init_process_group("nccl" if cuda else "gloo")
    sys.excepthook = _one_line_exceptions(rank, record)  # init put torch's own first: tracebacks
    atexit.register(_leave)
    return rank == 0


def _leave() -> None:
    import torch.distributed as dist
    if dist.is_initialized():
        dist.destroy_process_group()


def _one_line_exceptions(rank: int, record: io.StringIO | None):
    """An error that is not a SpecError (a peer gone, NCCL) as one line naming the rank, no traceback;
    under specc's launcher, to the launcher only, which prints the cause and not its consequences."""
    def report(kind, value, trace):
        if issubclass(kind, KeyboardInterrupt):
            print("interrupted", file=sys.stderr)
            return
        text = first_line(str(value))
        lost = isinstance(value, getattr(torch.distributed, "DistError", ())) or "peer" in text.lower()
        line = f"specc: rank {rank}: {LOST + ': ' if lost else ''}{kind.__name__}: {text}"
        print(line, file=record if record is not None else sys.stderr)
    return report


class _Tee(io.TextIOBase):
    def __init__(self, *streams):
        self.streams = streams

    def write(self, text: str) -> int:
        for stream in self.streams:
            stream.write(text)
        return len(text)

    def flush(self) -> None:
        for stream in self.streams:
            stream.flush()

    def isatty(self) -> bool:
        return self.streams[0].isatty()


def _record_output(args, rank: int) -> io.StringIO | None:
    """What a worker says: rank 0 prints (and, under specc's launcher, records its errors too); other
    ranks print nothing (no progress, no summary) and hand their standard error to the file torch's
    launcher reads when a worker fails. The record under specc's launcher, else None."""
    launched = os.environ.get(LAUNCHED) == "1"
    record = io.StringIO()
    if rank != 0:
        args.quiet = True
        sys.stdout = open(os.devnull, "w")
        sys.stderr = record
    elif launched:
        sys.stderr = _Tee(sys.stderr, record)
    error_file = os.environ.get("TORCHELASTIC_ERROR_FILE")

    def hand_over():
        if error_file and record.getvalue().strip():
            with open(error_file, "w") as out:
                json.dump({"message": record.getvalue()[-65536:], "timestamp": int(time.time())}, out)
    atexit.register(hand_over)
    return record if launched or rank != 0 else None


# ---------------------------------------------------------------- fit
def active() -> bool:
    """Whether this process is one of several in an initialised process group."""
    import torch.distributed as dist
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shard(criterion, optimizer, settings: dict):
    """``criterion`` unchanged outside a process group; inside one, the module wrapped in
    DistributedDataParallel and a criterion that evaluates this rank's share of each global batch."""
    if not active():
        return criterion
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel
    if optimizer.full_batch:
        raise SpecError(full_batch_refusal(optimizer.name, chosen=settings.get("method") != optimizer.name
                                           and settings.get("method") is not None))
    world, rank = dist.get_world_size(), dist.get_rank()
    device = next(criterion.model.parameters()).device
    if settings["seed"] is None:  # the same permutation on every rank: rank 0's seed
        seed = torch.randint(0, 2 ** 62, (1,), device=device)
        dist.broadcast(seed, 0)
        settings["seed"] = int(seed.item())
    if settings["batch_size"] is not None:
        settings["batch_size"] *= world  # the loop cuts global batches; each rank takes its share
    settings["processes"] = world
    settings["method"] = f"{settings.get('method') or optimizer.name}, {world} processes (DDP)"
    # Fixed values (buffers) never change: no broadcast before each forward pass (the option's newer name first).
    quiet_buffers = {"forward_sync_buffers" if "forward_sync_buffers" in
                     inspect.signature(DistributedDataParallel).parameters else "broadcast_buffers": False}
    module = DistributedDataParallel(criterion.model, device_ids=[device.index] if device.type == "cuda" else None,
                                     **quiet_buffers)
    return ShardedCriterion(criterion, module, rank, world)


class ShardedCriterion:
    """A :class:`~specc.train.losses.Criterion` over a global batch of rows, of which this rank
    evaluates every ``world``-th. Its value is the one-process criterion of the whole batch (all
    ranks' shares summed); its gradient, once DDP has averaged it, is that criterion's gradient."""

    def __init__(self, criterion, module, rank: int, world: int):
        self.original, self.rank, self.world = criterion, rank, world
        self.local = copy.copy(criterion)
        self.local.model = module  # the forward pass through DDP: its backward averages the gradients

    def __getattr__(self, name):
        return getattr(self.original, name)  # rows, loss, params, inputs … as the plain criterion

    def __call__(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        import torch.distributed as dist
        batch = torch.arange(self.original.rows) if rows is None else rows
        mine = batch[self.rank::self.world]
        # weight = world × this rank's share of the batch criterion (rows/batch for a mean, 1 for a sum)
        weight = (self.world * len(mine)) / len(batch) if self.original.loss.reduction == "mean" else self.world
        if len(mine) == 0:  # a last batch shorter than the group: this rank adds nothing, but takes part
            mine, weight = batch[:1], 0.0
        value = self.local(mine)
        decay = self.original.decay * sum((p * p).sum() for p in self.original.params) \
            if self.original.decay else 0.0
        # DDP averages: world × share × (loss - decay) + decay from each rank sums to the batch's
        # loss gradient plus the decay's once.
        backward = value if weight == 1 else weight * value + (1 - weight) * decay
        decay = decay.detach() if torch.is_tensor(decay) else decay
        total = ((value.detach() - decay) * (weight / self.world)).reshape(1)
        dist.all_reduce(total)  # the ranks' shares of the batch's loss
        whole = total[0] + decay
        return backward + (whole - backward).detach()
