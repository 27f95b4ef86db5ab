"""Training: fitting a compiled spec to data.

The modules, in the order a fit uses them:

- :mod:`~specc.train.fit`: :func:`fit`, :func:`predict`, :func:`start_from`;
- :mod:`~specc.train.data`: CSV and NPZ files, and data as the spec's tensors;
- :mod:`~specc.train.sequences`: sequence data (``[N, T, n]`` arrays, long CSV rows), the engines and
  default method of a spec with step nodes, predictions written back in the data's form;
- :mod:`~specc.train.losses` and :mod:`~specc.train.optimizers`: the two tables ``fit`` reads,
  and the loops that run each optimizer; :mod:`~specc.train.steppers`: the first-order updates
  through torch's functional kernels; :mod:`~specc.train.batching`: the data laid out for
  mini-batches;
- :mod:`~specc.train.devices` (``device``) and :mod:`~specc.train.validation` (``val_split``,
  ``val_data``, ``early_stopping``, accuracy);
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
