"""The forward of a spec with sequences: one readable loop over time steps (specc/sequences.py says
which values vary per step).

Before the loop, what does not vary per step (and each prev's start state, as [B, …]); in the loop,
``x_t = x[:, t]`` for each sequence input, then one line per statement, then each prev's state set to
this step's value; after the loop, what uses ``last(..)`` (Python's loop variables hold the final
step's values). A stepped output is the stack of its values, [B, T, …]. Called by
:meth:`specc.compile._Writer.forward_lines`, which writes every line of the spec's statements.
"""
from __future__ import annotations

from .compile import _MAX_HEIGHT, FORWARD_WIDTH, _paren, python_name
from .compile_runtime import SEQUENCE_INPUT_ERROR
from .layout import code_lines, comment, input_guard, wrap
from .lower import source_text
from .ops import ATOM

LOOP_WIDTH = FORWARD_WIDTH - 4  # the loop's body is indented once more


class _Loop:
    def __init__(self, writer):
        self.w, self.g = writer, writer.g
        g = self.g
        self.order = g.topological()
        self.sequences = [i for i in g.graph["inputs"] if g.nodes[i]["sequence"]]
        self.wanted = self._wanted()
        after: set[str] = set()  # what uses last(..): computed after the loop
        for node in self.order:
            if g.nodes[node].get("op") == "last" or any(a in after for a in g.nodes[node].get("args", ())):
                after.add(node)
        self.after = after
        self.height: dict[str, int] = {}

    def _wanted(self) -> set[str]:
        """The outputs and what they are computed from, through each wanted prev(h) to h itself."""
        g = self.g
        wanted = g.ancestors(g.graph["outputs"])
        while True:
            more = {g.nodes[p]["of"] for of, p in g.graph["recurrent"] if p in wanted} - wanted
            if not more:
                return wanted
            wanted |= g.ancestors(more)

    def name(self, wish: str) -> str:
        name = python_name(wish, self.w.taken)
        self.w.taken.add(name)
        return name

    # ------------------------------------------------------------ one statement
    def statement(self, node: str, width: int, keep: bool = False) -> list[str]:
        """The line computing ``node``, as forward_lines writes it; ``keep``: hold an unnamed value in a
        local even if used once (last(..) reads it after the loop)."""
        w, g = self.w, self.g
        attrs = g.nodes[node]
        w.number(node)
        if node not in self.wanted or attrs["kind"] != "op":
            return []
        self.height[node] = 1 + max((self.height.get(a, 0) for a in attrs["args"] if a not in w.locals), default=0)
        if attrs["name"]:
            text, _ = w.definition(node)
            statement = comment(source_text(g.graph["source"], attrs["stmt_span"]))
            return code_lines(f"{w.locals[node]} = {text}", f"line {attrs['stmt_span'].line}: {statement}", width)
        if keep or g.uses(node) > 1 or self.height[node] >= _MAX_HEIGHT:
            name = self.name(attrs.get("hint") or "t")
            text, _ = w.definition(node)
            w.locals[node] = name
            return code_lines(f"{name} = {text}", comment(attrs["label"]), width)
        return []

    def start(self, prev: str, state: str) -> str:
        """The state of prev(h) before the first step: its start as [B, *h's shape]."""
        w, g = self.w, self.g
        start, shape = g.nodes[prev]["args"][0], g.nodes[prev]["shape"]
        sizes = ", ".join(["batch_size", *map(str, shape)])
        value = w.number(start)
        if value is not None:
            maker = {0.0: "zeros", 1.0: "ones"}.get(value)
            filled = f"new_{maker}({sizes})" if maker else f"new_full(({sizes}), {w.tensor(start, ())})"
            text = f"{w.reference()}.{filled}"
        else:
            text, prec = w.code(start)
            attrs = g.nodes[start]
            if attrs["batched"] and attrs["shape"] == shape:
                pass
            else:
                if attrs["batched"] and shape:  # a per-sample scalar [B] spread over h's units
                    text, prec = f"{_paren(text, prec, ATOM)}.unsqueeze(-1)", ATOM
                text = f"{_paren(text, prec, ATOM)}.expand({sizes})"
        return f"{state} = {text}"

    # ------------------------------------------------------------ the whole forward
    def lines(self) -> list[str]:
        w, g = self.w, self.g
        head = self.input_check()
        first = w.locals[self.sequences[0]]
        steps, time, batch = self.name("steps"), self.name("t"), "batch_size"
        head.append(f"{batch}, {steps} = {first}.shape[0], {first}.shape[1]")
        before = []
        for node in self.order:
            if not g.nodes[node]["stepped"] and node not in self.after:
                before += self.statement(node, FORWARD_WIDTH)
        states, updates, shared = [], [], {}
        for of, prev in g.graph["recurrent"]:
            if prev not in self.wanted:
                continue
            start = g.nodes[prev]["args"][0]
            value = w.number(start)
            key = (of, start if value is None else value)  # prev(h) in three statements: one state
            if key not in shared:
                shared[key] = self.name(f"{w.locals.get(of, of)}_prev")
                before += code_lines(self.start(prev, shared[key]),
                                     f"{comment(g.nodes[prev]['label'])} at the first step", FORWARD_WIDTH)
                updates.append((of, shared[key]))
            states.append((prev, shared[key]))
        outputs = [n for n in g.graph["outputs"] if g.nodes[n]["stepped"] and g.nodes[n]["kind"] != "input"]
        collected = {n: self.name(f"{w.locals[n]}_steps") for n in outputs}
        before += [f"{collected[n]} = []" for n in outputs]
        body = []
        used = {a for n in self.wanted if g.nodes[n]["stepped"] for a in g.nodes[n].get("args", ())}
        used |= {of for of, prev in g.graph["recurrent"] if prev in self.wanted}
        originals = {}
        for x in self.sequences:
            if x in used:
                originals[x] = w.locals[x]
                w.locals[x] = self.name(f"{originals[x]}_t")
                body.append(f"{w.locals[x]} = {originals[x]}[:, {time}]")
        for prev, state in states:
            if g.nodes[prev]["name"]:  # `hp = prev(h)`: a statement of its own
                line = g.nodes[prev]["stmt_span"].line
                text = comment(source_text(g.graph["source"], g.nodes[prev]["stmt_span"]))
                body += code_lines(f"{w.locals[prev]} = {state}", f"line {line}: {text}", LOOP_WIDTH)
            else:
                w.locals[prev] = state
        kept = {g.nodes[n]["args"][0] for n in self.after if g.nodes[n].get("op") == "last"}
        for node in self.order:
            if g.nodes[node]["stepped"] and g.nodes[node].get("op") != "prev":
                body += self.statement(node, LOOP_WIDTH, keep=node in kept)
        body += [f"{collected[n]}.append({w.locals[n]})" for n in outputs]
        body += [f"{state} = {w.code(of)[0]}" for of, state in updates]
        # nothing computed per step (`output x` of a sequence input): no loop at all
        loop = [f"for {time} in range({steps}):"] + ["    " + line for line in body] if body else []
        for x, original in originals.items():  # after the loop a sequence is itself again
            w.locals[x] = original
        for node in self.after:
            attrs = g.nodes[node]
            if attrs.get("op") == "last" and g.nodes[attrs["args"][0]]["kind"] == "input":
                w.locals[node] = f"{w.locals[attrs['args'][0]]}[:, -1]"
        after = []
        for node in self.order:
            if node in self.after:
                after += self.statement(node, FORWARD_WIDTH)
        return head + before + loop + after + self.returned(collected)

    def returned(self, collected: dict[str, str]) -> list[str]:
        w, g = self.w, self.g
        values = []
        for name in g.graph["outputs"]:
            attrs = g.nodes[name]
            if name in collected:
                values.append(f"torch.stack({collected[name]}, dim=1)")
            elif not attrs["batched"]:  # the same value for every sample
                values.append(w.tensor(name, ("batch_size",)) if w.number(name) is not None else
                              f"{w.tensor(name, ())}.expand(batch_size{', -1' * len(attrs['shape'])})")
            else:
                values.append(w.tensor(name, ()))
        text = f"return {values[0]}" if len(values) == 1 else f"return Outputs({', '.join(values)})"
        return wrap(text, width=FORWARD_WIDTH)

    def input_check(self) -> list[str]:
        """Shapes [B, T, n] for sequences ([B, T] for x[T]) and [B, n] for the rest, one B for all and
        one T of at least 1 for all sequences; the message is built only on failure."""
        self.w.input_error = SEQUENCE_INPUT_ERROR
        g, w = self.g, self.w
        inputs = g.graph["inputs"]
        names = [w.locals[i] for i in inputs]
        first = names[0]
        steps_of = w.locals[self.sequences[0]]
        tests = [f"isinstance({name}, torch.Tensor)" for name in names]
        for k, (node, name) in enumerate(zip(inputs, names)):
            attrs = g.nodes[node]
            leading = 2 if attrs["sequence"] else 1
            tests.append(f"{name}.dim() == {leading + len(attrs['shape'])}")
            if attrs["shape"]:
                tests.append(f"{name}.shape[{leading}] == {attrs['shape'][0]}")
            if k:
                tests.append(f"{name}.shape[0] == {first}.shape[0]")
            if attrs["sequence"]:
                tests.append(f"{name}.shape[1] >= 1" if name == steps_of else
                             f"{name}.shape[1] == {steps_of}.shape[1]")
        sizes = tuple(g.nodes[i]["shape"][0] if g.nodes[i]["shape"] else None for i in inputs)
        sequences = tuple(g.nodes[i]["sequence"] for i in inputs)
        values = f"({names[0]},)" if len(names) == 1 else f"({', '.join(names)})"
        return input_guard(tests, f"raise input_error({tuple(inputs)!r}, {sizes!r}, {sequences!r}, {values})",
                           FORWARD_WIDTH)


def loop_forward_lines(writer) -> list[str]:
    """The body of forward for a spec that loops over time (``writer``: compile.py's ``_Writer``)."""
    return _Loop(writer).lines()
