"""The module-level helpers a generated file may hold, as source text: specc/compile.py writes each
one a module uses above its class (and specc/loops.py its own ``input_error`` for sequences).

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
