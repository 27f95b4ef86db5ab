"""Training: fitting a compiled spec to data.

The modules, in the order a fit uses them:

- :mod:`~specc.train.fit`: :func:`fit`, :func:`predict`, :func:`start_from`;
- :mod:`~specc.train.data`: CSV and NPZ files, and data as the spec's tensors;
- :mod:`~specc.train.losses` and :mod:`~specc.train.optimizers`: the two tables ``fit`` reads,
  and the loops that run each optimizer;
- :mod:`~specc.train.multistart`: the default method and batched restarts;
- :mod:`~specc.train.engines`: the :class:`~specc.train.engines.Objective` protocol and the
  engines that evaluate the criterion: the module under autograd, a NumPy tape
  (:mod:`~specc.train.tape`), the compiled criterion (:mod:`~specc.train.ccode`,
  :mod:`~specc.train.cbuild`), and nnet's own (:mod:`~specc.train.nnet`);
- :mod:`~specc.train.bfgs`: the variable-metric minimiser;
- :mod:`~specc.train.report`: the progress bar, the summary line, the loss curve.
"""
from .engines import ENGINES
from .fit import DTYPES, FitResult, fit, predict, start_from
from .losses import LOSSES
from .optimizers import OPTIMIZERS
from .report import format_result, plot_history, training_metadata

__all__ = ["DTYPES", "ENGINES", "FitResult", "LOSSES", "OPTIMIZERS", "fit", "format_result", "plot_history",
           "predict", "start_from", "training_metadata"]
