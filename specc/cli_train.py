"""The ``specc`` commands that run a module: train, predict and export (specc/cli.py builds their
options and runs them; the front-end commands are there). Each imports torch only when it runs.
"""
from __future__ import annotations

import sys
from pathlib import Path

from . import options
from .cli import graph_warned, limits_given, print_warnings
from .files import check_output, require


# ---------------------------------------------------------------- train, predict
def cmd_train(args) -> int:
    import json
    check_train_arguments(args)  # before the spec, the data and the fit
    import torch

    from .train import distributed  # --nproc: this command in N processes; a worker: its process group
    if args.nproc is not None or args.nnodes is not None or args.node_rank is not None or args.rdzv_endpoint:
        return distributed.launch(args)
    lead = distributed.join(args)  # False on ranks other than 0: they write nothing
    from .api import load
    from .train import DTYPES, OPTIMIZERS, fit, format_result, plot_history, start_from, training_metadata
    from .weights import save_weights
    # Without --optimizer, fit chooses the method and with it the dtype (float64 for bfgs).
    dtype = DTYPES[args.dtype] if args.dtype else \
        (OPTIMIZERS[args.optimizer].dtype or torch.float32) if args.optimizer else None
    if args.seed is not None:
        torch.manual_seed(args.seed)  # the compiler's initial values, then the mini-batch order and restarts
    # the one IR of this command: the module carries it; a number of the spec beyond the dtype is refused
    module = load(Path(args.spec), dtype=dtype or torch.float32, **limits_given(args))
    print_warnings(module.spec_ir)
    if dtype is None and args.init_from:
        module.double()  # the file's values at full precision; fit chooses the dtype (float64 for bfgs)
    start_from(module, init_from=args.init_from, rang=args.rang)  # the first restart's start
    result = fit(module, args.data, loss=args.loss, optimizer=args.optimizer, lr=args.lr, epochs=args.epochs,
                 max_iter=args.max_iter, batch_size=args.batch_size, momentum=args.momentum, abstol=args.abstol,
                 reltol=args.reltol, decay=args.decay, seed=args.seed, dtype=dtype, engine=args.engine,
                 restarts=args.restarts, progress=not args.quiet, device=args.device, val_split=args.val_split,
                 val_data=args.val_data, early_stopping=args.early_stopping)
    if args.out and lead:  # only now: a failed or interrupted run writes nothing
        save_weights(module.cpu(), args.out, training_metadata(result, args.data))  # from host memory
    if args.plot and lead:
        title = f"{Path(args.spec).name}: {result.settings['optimizer']}, {args.loss}"
        plot_history(result.history, args.plot, title=title, validation=(result.val_at, result.val_history))
    print(json.dumps(result.summary()) if args.json else f"{args.spec}: {format_result(result)}")
    starts = args.init_from or (f"--rang {args.rang}" if args.rang is not None else None)
    if starts and len(result.restarts) > 1 and not args.quiet:
        kept = next(i for i, r in enumerate(result.restarts) if r["kept"]) + 1
        print(f"specc: note: restart 1 started from {starts}, restarts 2-{len(result.restarts)} from the "
              f"spec's initialisers; restart {kept} is kept (--restarts 1 fits from {starts} alone)",
              file=sys.stderr)
    for written in (args.out, args.plot):
        if written and not args.quiet:
            print(f"wrote {written}", file=sys.stderr)
    return 0


def check_train_arguments(args) -> None:
    """Refuse bad option values and unwritable outputs before the spec or the data is read, so a
    mistake never costs a fit (specc.options, specc.files.check_output)."""
    options.check({name: getattr(args, name) for name in ("lr", "momentum", "decay", "abstol", "reltol",
                   "epochs", "max_iter", "batch_size", "restarts", "seed", "rang", "val_split",
                   "early_stopping")}, cli=True)
    from .train.validation import check_arguments
    check_arguments(args.val_split, args.val_data, args.early_stopping, args.optimizer, cli=True)
    inputs = [("the spec", args.spec), ("the data (--data)", args.data),
              ("the initial values (--init-from)", args.init_from),
              ("the validation data (--val-data)", args.val_data)]
    if args.out:
        check_output(args.out, "--out", inputs=inputs)
    if args.plot:
        require("matplotlib", "--plot")
        from .train.report import plot_formats
        check_output(args.plot, "--plot", formats=plot_formats(), writer="matplotlib writes",
                     inputs=inputs + [("the weights (--out)", args.out)])


def cmd_predict(args) -> int:
    import torch

    from .api import load
    from .train.data import as_table
    from .train.sequences import prediction_bytes, write_predictions
    from .train import predict
    if args.output not in (None, "-"):
        check_output(args.output, "-o", inputs=[("the spec", args.spec), ("the weights (--weights)", args.weights),
                                                ("the data (--data)", args.data)])
    module = load(Path(args.spec), weights=args.weights, **limits_given(args))  # in the weights' own precision
    print_warnings(module.spec_ir)
    table = as_table(args.data)  # read once: long rows' sequence ids go back into the file
    values = predict(module, table, next(module.parameters(), torch.empty(0)).dtype, device=args.device)
    if args.output in (None, "-"):  # CSV (long rows for sequences), or NPZ arrays for -o FILE.npz
        sys.stdout.write(prediction_bytes(module, table, values, ".csv").decode("utf-8"))
    else:
        write_predictions(module, table, values, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def cmd_export(args) -> int:
    from .exporting import check_arguments, export_checked  # ONNX or torch.export
    limits = limits_given(args)
    check_arguments(args.output, spec=args.spec, weights=args.weights, opset=args.opset, steps=args.steps,
                    cli=True)  # before the spec is read
    export_checked(graph_warned(args.spec, **limits), args.output, args.weights, args.opset, args.steps,
                   cli=True)
    print(f"wrote {args.output}", file=sys.stderr)
    return 0
