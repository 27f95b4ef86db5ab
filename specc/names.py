"""What each name of a spec means: the half of the IR builder (specc/lower.py) that collects the
statements and sorts the names into inputs, parameters, fixed values, nodes and functions.

:class:`Names` holds no state of its own: :class:`specc.lower._Builder`, which inherits it, sets the
tables it reads and fills (``defined``, ``inputs``, ``param_decls``, ``assigns``, ``params`` …).
"""
from __future__ import annotations

from . import parser as ast
from .errors import (InputAssignmentError, KindError, RedefinitionError, ReservedNameError, ShapeError,
                     UnknownFunctionError)
from .ops import FUNCTIONS
from .reserved import MODULE_ATTRIBUTES


class Names:
    """The statements' names and their meanings; lowering (specc/lower.py) builds on them."""

    # ------------------------------------------------------------ names
    def _define(self, name: ast.Name) -> None:
        if name.id in FUNCTIONS:
            raise ReservedNameError(f"'{name.id}' is a built-in function and cannot be redefined", name.span)
        if name.id in self.defined:
            first = self.defined[name.id]
            raise RedefinitionError(f"'{name.id}' is already defined (at line {first.line})", name.span,
                                    notes=((f"first definition of '{name.id}'", first),))
        self.defined[name.id] = name.span

    def collect(self) -> None:
        statements = self.program.statements
        for stmt in statements:  # inputs first: an assignment to one may come before its declaration
            if isinstance(stmt, ast.InputDecl):
                for decl in stmt.decls:
                    self._define(decl.name)
                    if decl.dims is not None and len(decl.dims) != 1:
                        raise ShapeError(f"input '{decl.name.id}' must be a scalar or a vector [n], "
                                         f"not {list(decl.dims)}", decl.span)
                    self.inputs[decl.name.id] = decl
        for stmt in statements:
            if isinstance(stmt, (ast.ParamDecl, ast.FixedDecl)):
                for decl in stmt.decls:
                    self._declare_value(decl, isinstance(stmt, ast.FixedDecl))
            elif isinstance(stmt, ast.Def):
                self._define(stmt.name)
                seen = set()
                for p in stmt.params:
                    if p.id in FUNCTIONS:
                        raise ReservedNameError(f"'{p.id}' is a built-in function and cannot be redefined", p.span)
                    if p.id in seen:
                        raise RedefinitionError(f"argument '{p.id}' appears twice in '{stmt.name.id}'", p.span)
                    seen.add(p.id)
                self.defs[stmt.name.id] = stmt
            elif isinstance(stmt, ast.Assign):
                name = stmt.target.name
                if name.id in self.inputs:
                    raise InputAssignmentError(
                        f"cannot assign to '{name.id}': it is an input", name.span,
                        notes=((f"'{name.id}' is declared as an input here", self.inputs[name.id].name.span),))
                self._define(name)
                self.assigns[name.id] = stmt
            elif isinstance(stmt, ast.Init):
                self.inits.append(stmt)
            elif isinstance(stmt, (ast.Use, ast.Block)):
                from .blocks import collect_block_statement
                collect_block_statement(self, stmt)
            elif isinstance(stmt, ast.OutputDecl):
                if self.output_decl is not None:
                    raise RedefinitionError("outputs are already declared", stmt.span,
                                            notes=(("first output line", self.output_decl.span),))
                self.output_decl = stmt
        for name, stmt in list(self.assigns.items()):
            if isinstance(stmt.expr, ast.Name) and self._is_function(stmt.expr.id):
                if stmt.target.dims is not None:
                    raise KindError(f"'{name}' names the function '{stmt.expr.id}' and cannot have a size",
                                    stmt.target.span)
                self.aliases[name] = stmt.expr
                del self.assigns[name]

    def _declare_value(self, decl: ast.Decl, fixed: bool) -> None:
        """A `param` or `fixed` declaration: a value is trained or fixed, never both."""
        name = decl.name
        other = self.param_decls if fixed else self.fixed_decls
        if name.id in other:
            first = other[name.id].name.span
            was, now = ("a parameter", "fixed") if fixed else ("fixed", "a parameter")
            raise RedefinitionError(f"'{name.id}' is declared {was} (at line {first.line}) and cannot also be "
                                    f"{now}: a value is trained (param) or fixed, not both", name.span,
                                    notes=((f"'{name.id}' is declared {was} here", first),))
        self._define(name)
        if fixed:
            if name.id in MODULE_ATTRIBUTES:
                raise ReservedNameError(f"'{name.id}' cannot be a fixed value's name: it would shadow the "
                                        f"torch.nn.Module attribute of that name", name.span)
            self.fixed_decls[name.id] = decl
        else:
            self.param_decls[name.id] = decl

    def _is_function(self, name: str) -> bool:
        """Whether a name means a function: a built-in, a def, or a chain of `g = f` lines ending in one."""
        seen = set()
        while name not in seen:  # a loop, not recursion: `g = h; h = g` is a cycle of nodes, not an alias
            if name in FUNCTIONS or name in self.defs or name in self.aliases:
                return True
            stmt = self.assigns.get(name)
            if stmt is None or not isinstance(stmt.expr, ast.Name) or stmt.target.dims is not None:
                return False
            seen.add(name)
            name = stmt.expr.id
        return False

    def resolve_function(self, name: ast.Name) -> str:
        """Follow aliases to a built-in or user-defined function name."""
        while name.id in self.aliases:  # _is_function admitted only chains that end in a function
            name = self.aliases[name.id]
        if name.id in FUNCTIONS or name.id in self.defs:
            return name.id
        if name.id in self.assigns or name.id in self.inputs or name.id in self.param_decls \
                or name.id in self.fixed_decls:
            raise KindError(f"'{name.id}' is a value, not a function", name.span)
        import difflib  # only on this error path

        known = sorted(set(FUNCTIONS) | set(self.defs) | set(self.aliases))
        close = difflib.get_close_matches(name.id, known, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; define it with 'def'"
        raise UnknownFunctionError(f"unknown function '{name.id}'{hint} (built-in: {', '.join(sorted(FUNCTIONS))})",
                                   name.span)

    def _value_kind(self, name: str, local: frozenset) -> str:
        if name in local:
            return "local"
        if name in ast.CONSTANTS:
            return "const"
        if name in self.inputs:
            return "input"
        if name in self.fixed_decls:
            return "fixed"
        if name in self.assigns:
            return "node"
        if name in self.aliases or name in FUNCTIONS or name in self.defs or name in self.instances \
                or name in self.block_defs:
            return "function"
        return "param"

    def find_params(self) -> None:
        """Every free name is a parameter; order is first textual appearance outside init lines."""
        def see(name: ast.Name):
            if name.id not in self.params:
                if name.id in MODULE_ATTRIBUTES:
                    raise ReservedNameError(f"'{name.id}' cannot be a parameter name: it would shadow the "
                                            f"torch.nn.Module attribute of that name", name.span)
                self.params[name.id] = name.span

        def scan(expr, local):
            for node in ast.walk(expr):
                if isinstance(node, ast.Name) and self._value_kind(node.id, local) == "param":
                    see(node)

        for stmt in self.program.statements:
            if isinstance(stmt, ast.ParamDecl):
                for decl in stmt.decls:
                    see(decl.name)
            elif isinstance(stmt, ast.Def):
                scan(stmt.body, frozenset(p.id for p in stmt.params))
            elif isinstance(stmt, ast.Assign) and stmt.target.name.id in self.assigns:
                scan(stmt.expr, frozenset())

    def what_is(self, name: str) -> str | None:
        """What a name means, for messages about a name used in the wrong place."""
        if name in self.params:
            return "a parameter"
        if name in self.fixed_decls:
            return "a fixed value"
        return ("an input" if name in self.inputs else "a node" if name in self.assigns
                else "a function" if self._is_function(name) else None)
