"""Names specc reserves, and the Python identifiers it writes for a spec's names.

A spec may not name a parameter or a fixed value after an attribute every generated module has
(:data:`MODULE_ATTRIBUTES`: it would shadow it; specc/lower.py refuses it); any other name reaches
the generated code through :func:`python_name` (specc/compile.py), renamed where Python or the
generated code needs another. Plain data and string rules: importing this module imports nothing.
"""
from __future__ import annotations

import keyword
import re

# Attributes of every module specc generates; a parameter of that name would shadow them.
GENERATED_ATTRIBUTES = frozenset({"spec_source", "spec_file", "spec_inputs", "spec_outputs", "spec_ir",
                                  "reset_parameters", "reset_fixed", "check_inputs"})
# torch.nn.Module's own attributes (torch 2.x), written out so that checking a spec never imports torch;
# tests/test_lower.py checks that the list covers the installed torch.
TORCH_MODULE_ATTRIBUTES = frozenset("""
T_destination __annotations__ __call__ __class__ __delattr__ __dict__ __dir__ __doc__ __eq__ __format__
__ge__ __getattr__ __getattribute__ __getstate__ __gt__ __hash__ __init__ __init_subclass__ __le__ __lt__
__module__ __ne__ __new__ __reduce__ __reduce_ex__ __repr__ __setattr__ __setstate__ __sizeof__ __str__
__subclasshook__ __weakref__ _apply _backward_hooks _backward_pre_hooks _buffers _call_impl
_compiled_call_impl _forward_hooks _forward_hooks_always_called _forward_hooks_with_kwargs
_forward_pre_hooks _forward_pre_hooks_with_kwargs _get_backward_hooks _get_backward_pre_hooks _get_name
_is_full_backward_hook _load_from_state_dict _load_state_dict_post_hooks _load_state_dict_pre_hooks
_maybe_warn_non_full_backward_hook _modules _named_members _non_persistent_buffers_set _parameters
_register_load_state_dict_pre_hook _register_state_dict_hook _replicate_for_data_parallel
_save_to_state_dict _slow_forward _state_dict_hooks _state_dict_pre_hooks _version _wrapped_call_impl
add_module apply bfloat16 buffers call_super_init children compile cpu cuda double dump_patches eval
extra_repr float forward get_buffer get_extra_state get_parameter get_submodule half ipu
load_state_dict modules mtia named_buffers named_children named_modules named_parameters parameters
register_backward_hook register_buffer register_forward_hook register_forward_pre_hook
register_full_backward_hook register_full_backward_pre_hook register_load_state_dict_post_hook
register_load_state_dict_pre_hook register_module register_parameter register_state_dict_post_hook
register_state_dict_pre_hook requires_grad_ set_extra_state set_submodule share_memory state_dict to
to_empty train training type xpu zero_grad
""".split())
MODULE_ATTRIBUTES = TORCH_MODULE_ATTRIBUTES | GENERATED_ATTRIBUTES

# Names the generated module itself uses; a spec name equal to one is renamed.
GENERATED_NAMES = frozenset({"self", "torch", "nn", "F", "math", "NamedTuple", "Outputs", "batch_size",
                             "input_error", "linear_sum", "parameter_property", "getattr", "__debug__"})


def python_name(name: str, taken: set[str] | frozenset = frozenset()) -> str:
    """The Python identifier for a spec name.

    The spec name itself, unless Python or the generated code needs another:
    a name starting with ``__`` gets the prefix ``spec`` (Python would mangle it
    inside a class); a keyword or a name the generated code uses (``self``,
    ``torch``, ``nn``, ``F``, ``math`` …) gets a trailing ``_``; and a trailing
    ``_`` is added until the name differs from every name already taken.
    """
    candidate = "spec" + name if name.startswith("__") else name
    if keyword.iskeyword(candidate) or candidate in GENERATED_NAMES:
        candidate += "_"
    while candidate in taken:
        candidate += "_"
    return candidate


def field_name(name: str, taken: set[str]) -> str:
    """A NamedTuple field for an output: as :func:`python_name`, and ``out`` before a leading ``_``."""
    return python_name("out" + name if name.startswith("_") else name, taken)


def class_name(file: str) -> str:
    """A CamelCase class name from a spec's file name (``two_io.spec`` → ``TwoIo``)."""
    stem = re.sub(r"\.spec$", "", file.replace("\\", "/").rsplit("/", 1)[-1])
    words = re.findall(r"[A-Za-z0-9]+", stem)
    name = "".join(w[:1].upper() + w[1:] for w in words)
    if not name or name[0].isdigit():
        name = "Spec" + name
    if not name.isascii() or keyword.iskeyword(name) or name in GENERATED_NAMES or name == "SpecModel":
        name += "Model"
    return name


def _attribute(name: str) -> str:
    """``self.W1``, or ``getattr(self, 'class')`` where attribute syntax would not work."""
    plain = not keyword.iskeyword(name) and not name.startswith("__")
    return f"self.{name}" if plain else f"getattr(self, {name!r})"
