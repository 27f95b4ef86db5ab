"""The module-level helpers a generated file may hold, as source text: specc/compile.py writes each
one a module uses above its class (specc/loops.py the ``input_error`` for sequences).

They run in the generated file, so they may use only what it imports (``torch``, ``nn``, ``F``).
"""
_INPUT_ERROR = '''


def input_error(names: tuple, sizes: tuple, values: tuple) -> Exception:
    """Why inputs were refused: each must have shape [B, size] ([B] for a scalar), one B for all."""
    batch = None
    for name, size, value in zip(names, sizes, values):
        if not isinstance(value, torch.Tensor):
            return TypeError(f"input {name!r} must be a torch.Tensor, got {type(value).__name__}")
        expected = [] if size is None else [size]
        if value.dim() != 1 + len(expected) or list(value.shape[1:]) != expected \\
                or batch not in (None, value.shape[0]):
            wanted = ", ".join(["B" if batch is None else str(batch)] + [str(s) for s in expected])
            return ValueError(f"input {name!r} must have shape [{wanted}], got {list(value.shape)}")
        batch = value.shape[0]
    return ValueError("the inputs' shapes do not fit the spec")
'''


# The same for a spec that loops over time (specc/loops.py): sequences are [B, T, size].
SEQUENCE_INPUT_ERROR = '''


def input_error(names: tuple, sizes: tuple, sequences: tuple, values: tuple) -> Exception:
    """Why inputs were refused: a sequence must have shape [B, T, size] ([B, T] for a scalar), any
    other input [B, size] ([B]); one B for all, one T of at least 1 for all sequences."""
    batch = steps = None
    for name, size, sequence, value in zip(names, sizes, sequences, values):
        if not isinstance(value, torch.Tensor):
            return TypeError(f"input {name!r} must be a torch.Tensor, got {type(value).__name__}")
        leading, expected = (2 if sequence else 1), ([] if size is None else [size])
        if value.dim() != leading + len(expected) or list(value.shape[leading:]) != expected:
            wanted = ", ".join(["B", "T"][:leading] + [str(s) for s in expected])
            return ValueError(f"input {name!r} must have shape [{wanted}], got {list(value.shape)}")
        if batch not in (None, value.shape[0]):
            return ValueError(f"input {name!r} has a batch of {value.shape[0]}, "
                              f"the inputs before it {batch}")
        batch, length = value.shape[0], (value.shape[1] if sequence else steps)
        if length == 0:
            return ValueError(f"input {name!r} has no time steps: a sequence needs T of at least 1")
        if steps not in (None, length):
            return ValueError(f"input {name!r} has {length} time steps, "
                              f"the sequences before it {steps}")
        steps = length
    return ValueError("the inputs' shapes do not fit the spec")
'''


_LINEAR_SUM = '''

def linear_sum(inputs: list, weights: list, bias: torch.Tensor | None) -> torch.Tensor:
    """The sum of inputs[k] @ weights[k].T, plus bias. On large batches one GEMM over the joined
    inputs and weights is the fastest way on a CPU; on small ones, one GEMM each, accumulating into
    the first (measured in benchmarks/bench_core.py)."""
    if inputs[0].shape[0] >= 256:
        return F.linear(torch.cat(inputs, dim=-1), torch.cat(weights, dim=1), bias)
    total = F.linear(inputs[0], weights[0], bias)
    for x, weight in zip(inputs[1:], weights[1:]):
        total = torch.addmm(total, x, weight.T)
    return total
'''


_PARAMETER_PROPERTY = '''

def parameter_property(name: str) -> property:
    """A class attribute that reads the registered parameter ``name``."""
    def get(module: nn.Module) -> nn.Parameter:
        try:
            return module._parameters[name]
        except KeyError:  # not registered yet (or deleted): let nn.Module register or report it
            raise AttributeError(name) from None
    return property(get)
'''
