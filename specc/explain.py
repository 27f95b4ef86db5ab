"""``specc explain SPEC [NAME]``: each size of each input, parameter, fixed value and node, and the chain
of statements that fixed it, in the style of the error notes::

    W1 [10, 5]: 10 from 'h[10]' (3:1); 5 from 'input in1[5]' (1:7) through 'W1·in1' (3:12)

Shape inference (specc/shapes.py) keeps, when asked, where each size got its number (a bind: a
declaration, an input, a slice …) and where two sizes were made one (a unification: an operation or a
declared size). Sizes made one form a graph whose edges are those places; the chain of a size is the
shortest path in it from the size to the one its number was given to. Only this command keeps that
record: ``specc check`` infers exactly as before, without it.
"""
from __future__ import annotations

from collections import deque

from .errors import Span, UnknownNameError
from .ir import Graph
from .shapes import Size, Term, Unifier

MAX_STEPS = 8  # steps of a chain printed in full
LONG = 50  # a chain longer than this is kept as its first 3 and last 2 steps, --json too: a deep stack of
# layers has chains as long as it is deep, and explaining all its names must stay linear


def explain(text: str, file: str, name: str | None = None, max_size: int | None = None,
            max_elements: int | None = None) -> tuple[Graph, dict]:
    """(the IR, what ``specc explain`` reports as data) for spec text; ``name`` picks one entry;
    ``max_size``, ``max_elements``: as ``specc.graph``'s."""
    from .limits import limits_of
    from .lower import build_graph, collector_paused
    from .parser import parse_program
    limits = limits_of(max_size, max_elements)
    unifier = Unifier(trace=[])
    with collector_paused():
        ir = build_graph(parse_program(text, file, limits), unifier, limits)
    names = _names(ir)
    if name is not None and name not in names:
        raise UnknownNameError(_unknown(name, names, file))
    parent, adopted = _paths(unifier.trace)
    entries = []
    for node in ([name] if name is not None else names):
        own, last = _own_sizes(unifier.terms[node], adopted)
        sizes = [_chain(size, parent, last) for size in own]
        entries.append({"name": node, "kind": ir.nodes[node]["kind"], "shape": list(ir.nodes[node]["shape"]),
                        "at": _at(ir.nodes[node]["span"]), "sizes": sizes})
    return ir, {"file": file, "names": entries}


def _names(ir: Graph) -> list[str]:
    """Inputs, parameters, fixed values, then named nodes in the order they are written."""
    nodes = [n for n in ir if ir.nodes[n]["kind"] == "op" and ir.nodes[n]["name"]]
    nodes.sort(key=lambda n: (ir.nodes[n]["span"].line, ir.nodes[n]["span"].column))
    return list(ir.graph["inputs"]) + list(ir.graph["params"]) + list(ir.graph.get("fixed", ())) + nodes


def _unknown(name: str, names: list[str], file: str) -> str:
    from .lint import distance
    longest = max((len(n) for n in names), default=0) + len(name)
    ranked = sorted(names, key=lambda n: (distance(name.lower(), n.lower(), longest), names.index(n)))
    shown = ", ".join(ranked[:12]) + (" …" if len(ranked) > 12 else "")
    return f"'{name}' is not an input, parameter or node of {file}; it has: {shown or 'none'}"


def _own_sizes(term: Term, adopted: dict) -> tuple[tuple[Size, ...], list]:
    """A node's sizes as its own statement (or a parameter's first use) gave them, and the steps by
    which an undetermined value took a partner's shape. The term's root now may be a later partner's,
    whose sizes are equal but reached by another chain."""
    steps = []
    while term.kind is None and term in adopted and len(steps) < 1000:
        term, where, what = adopted[term]
        steps.append((what, where))
    if term.kind is None:
        term = term.root()
    return term.sizes, steps[::-1]


def _paths(trace: list) -> tuple[dict, dict]:
    """For every size whose number is known, the step towards the size that number was given to:
    size → (next size, where, what), or None at that size itself. One breadth-first search over all
    classes at once, from each class's origin, so every chain is a shortest one. And for every
    undetermined term that took another's shape: term → (that term, where, what)."""
    links: dict[Size, list] = {}
    sources, adopted = [], {}
    for size, other, where, what in trace:
        if isinstance(size, Term):
            adopted[size] = (other, where, what)
        elif isinstance(other, Size):
            links.setdefault(size, []).append((other, where, what))
            links.setdefault(other, []).append((size, where, what))
        elif size.root().origin == other:  # the bind that gave this class its number (and origin)
            sources.append(size)
    parent: dict = dict.fromkeys(sources, (None, None, None, 0, ()))
    queue = deque(sources)
    while queue:
        size = queue.popleft()
        depth, head = parent[size][3:]
        for other, where, what in links.get(size, ()):
            if other not in parent:  # with the chain's length and its first three steps from the origin
                parent[other] = (size, where, what, depth + 1, head if len(head) == 3 else head + ((what, where),))
                queue.append(other)
    return parent, adopted


def _chain(size: Size, parent: dict, last: list) -> dict:
    root = size.root()
    value, origin = root.value, root.origin
    steps, node = [], size
    depth, head = parent[size][3:] if size in parent else (0, ())
    while len(steps) < (depth if depth <= LONG else 2):
        node, where, what = parent[node][:3]
        steps.append((what, where))
    steps.reverse()  # from the origin towards the size asked about
    if depth > LONG:
        steps[:0] = list(head) + [(f"… {depth - 5} more …", None)]
    steps += last  # how an undetermined value took its partner's shape
    origin_span = origin[1] if origin else None
    through = []
    for what, where in steps:
        if where == origin_span or (through and through[-1] == {"what": what, "at": _at(where)}):
            continue  # the declaration that gave the number, or a step said twice
        through.append({"what": what, "at": _at(where)})
    return {"size": value, "from": origin[0] if origin else None, "at": _at(origin_span), "through": through}


def _at(span: Span | None) -> str | None:
    return f"{span.line}:{span.column}" if span else None


def _place(text: str, at: str | None) -> str:
    return f"{text} ({at})" if at else text


def format_explanation(found: dict) -> str:
    """One line per name: its shape, then each size with where it came from and through what."""
    lines = []
    for entry in found["names"]:
        if not entry["shape"]:
            lines.append(f"{entry['name']} scalar")
            continue
        told = []
        for size in entry["sizes"]:
            text = str(size["size"])
            if size["from"]:
                text = _place(f"{text} from {size['from']}", size["at"])
            steps = [_place(step["what"], step["at"]) for step in size["through"]]
            if len(steps) > MAX_STEPS:  # a long chain (a deep stack of layers): its ends say the most
                steps[3:-2] = [f"… {len(steps) - 5} more …"]
            if steps:
                text += " through " + ", ".join(steps)
            told.append(text)
        lines.append(f"{entry['name']} [{', '.join(map(str, entry['shape']))}]: " + "; ".join(told))
    return "\n".join(lines)
