"""Arithmetic expressions over model symbols, with exact derivatives.

Model files write rates, clearances, volumes, dose split fractions and output weights as small
arithmetic expressions (``"CL / V_plasma"``, ``"k_liver * (1 - f_macrophage * depleted)"``).
This module parses them with :mod:`ast`, differentiates them symbolically and generates one
straight-line numpy function that returns every expression's value and its Jacobian with respect
to the model's parameters. The generated function works on a batch of parameter sets at once.

Allowed syntax: numbers, symbol names, ``+ - * /``, ``**`` with a constant exponent, unary minus,
and the functions ``exp``, ``log``, ``sqrt``. Limits keep parsing and evaluation bounded: at most
``MAX_LENGTH`` characters, ``MAX_NODES`` syntax nodes and ``MAX_DEPTH`` levels of nesting,
exponents of magnitude at most ``MAX_EXPONENT``; every literal and every part made of literals
alone (``9 ** 99``, ``1 - 1``) must evaluate to a finite number, and no divisor may be a literal
zero.
"""

from __future__ import annotations

import ast
import copy
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from exopk.errors import ModelFileError

__all__ = ["Expression", "ExpressionSet", "parse_expression", "MAX_LENGTH", "MAX_NODES",
           "MAX_DEPTH", "MAX_EXPONENT"]

_FUNCTIONS = ("exp", "log", "sqrt")
MAX_LENGTH = 5000
MAX_NODES = 1000
MAX_DEPTH = 100
SCALAR_BATCH = 8      # batches up to this size are evaluated with Python floats, member by member
MAX_EXPONENT = 100.0
_CONSTANT_FUNCTIONS = {"exp": math.exp, "log": math.log, "sqrt": math.sqrt}


@dataclass(frozen=True)
class Expression:
    """A parsed expression: its text and the symbols it reads."""

    text: str
    tree: ast.expr
    symbols: frozenset[str]


def _check(node: ast.AST, text: str, where: str) -> None:
    allowed_ops = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow)
    if isinstance(node, ast.BinOp):
        if not isinstance(node.op, allowed_ops):
            raise ModelFileError(f"operator {type(node.op).__name__} not allowed in '{text}'", key=where)
        if isinstance(node.op, ast.Pow) and not _is_number(node.right):
            raise ModelFileError(f"exponent must be a number in '{text}'", key=where)
        _check(node.left, text, where)
        _check(node.right, text, where)
        exponent = _constant(node.right, text, where) if isinstance(node.op, ast.Pow) else 0.0
        if not abs(exponent) <= MAX_EXPONENT:
            raise ModelFileError(f"exponent {ast.unparse(node.right)} in '{text}' is larger in "
                                 f"magnitude than {MAX_EXPONENT:g}", key=where)
        if isinstance(node.op, ast.Div) and _constant(node.right, text, where) == 0.0:
            raise ModelFileError(f"division by zero ({ast.unparse(node.right)}) in '{text}'",
                                 key=where)
    elif isinstance(node, ast.UnaryOp):
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise ModelFileError(f"operator {type(node.op).__name__} not allowed in '{text}'", key=where)
        _check(node.operand, text, where)
    elif isinstance(node, ast.Call):
        if not (isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS) or len(node.args) != 1 \
                or node.keywords:
            raise ModelFileError(
                f"only exp(x), log(x) and sqrt(x) may be called, in '{text}'", key=where)
        _check(node.args[0], text, where)
        _constant(node, text, where)
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
            raise ModelFileError(f"constant {node.value!r} is not a number in '{text}'", key=where)
        _constant(node, text, where)
    elif isinstance(node, ast.Name):
        if node.id in _FUNCTIONS:
            raise ModelFileError(f"'{node.id}' is a function, not a symbol, in '{text}'", key=where)
    else:
        raise ModelFileError(f"'{text}' is not an arithmetic expression "
                             f"({type(node).__name__} not allowed)", key=where)


def _constant(node: ast.expr, text: str, where: str) -> float | None:
    """Value of a part made of literals alone, in floating point; None if it reads a symbol.

    Raises
    ------
    ModelFileError
        When that value is not a finite number (overflow, division by zero, log of zero).
    """
    if not all(isinstance(n, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.Call, ast.operator,
                              ast.unaryop, ast.Load))
               or (isinstance(n, ast.Name) and n.id in _FUNCTIONS) for n in ast.walk(node)):
        return None
    try:
        value = _float_value(node)
    except (ArithmeticError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ModelFileError(f"'{_short(ast.unparse(node))}' in '{_short(text)}' does not "
                             "evaluate to a finite number", key=where)
    return value


def _float_value(node: ast.expr) -> float:
    """Floating-point value of a checked literal-only part (no integer arithmetic: bounded time)."""
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp):
        inner = _float_value(node.operand)
        return -inner if isinstance(node.op, ast.USub) else inner
    if isinstance(node, ast.Call):
        return _CONSTANT_FUNCTIONS[node.func.id](_float_value(node.args[0]))
    left, right = _float_value(node.left), _float_value(node.right)
    operation = {ast.Add: float.__add__, ast.Sub: float.__sub__, ast.Mult: float.__mul__,
                 ast.Div: float.__truediv__, ast.Pow: math.pow}[type(node.op)]
    return operation(left, right)


def _check_size(tree: ast.expr, text: str, where: str) -> None:
    """Bound the number of nodes and the nesting depth (without recursion)."""
    nodes, stack = 0, [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            raise ModelFileError(f"expression '{_short(text)}' has more than {MAX_NODES} parts; "
                                 "split it into parameters", key=where)
        if depth > MAX_DEPTH:
            raise ModelFileError(f"expression '{_short(text)}' nests more than {MAX_DEPTH} "
                                 "levels deep", key=where)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else f"{text[:limit]}..."


def _is_number(node: ast.AST) -> bool:
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _is_number(node.operand)
    return isinstance(node, ast.Constant) and isinstance(node.value, (int, float))


def parse_expression(text: str | float | int, *, where: str = "") -> Expression:
    """Parse ``text`` into an :class:`Expression`.

    Parameters
    ----------
    text : str or number
        The expression. A number is accepted and turned into a constant expression.
    where : str
        Key of the model file the expression came from, used in error messages.

    Raises
    ------
    ModelFileError
        When the text is not an allowed arithmetic expression.

    Examples
    --------
    >>> sorted(parse_expression("CL / V_plasma").symbols)
    ['CL', 'V_plasma']
    """
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ModelFileError(f"expected an expression or a number, got {text!r}", key=where)
    text = str(text)
    if len(text) > MAX_LENGTH:
        raise ModelFileError(f"expression '{_short(text)}' is longer than {MAX_LENGTH} characters",
                             key=where)
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ModelFileError(f"cannot parse expression '{_short(text)}': {exc.msg}",
                             key=where) from None
    except (RecursionError, MemoryError):
        raise ModelFileError(f"expression '{_short(text)}' nests too deeply to parse",
                             key=where) from None
    _check_size(tree, text, where)
    _check(tree, text, where)
    symbols = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name)
                        and n.id not in _FUNCTIONS)
    return Expression(text=text, tree=tree, symbols=symbols)


# -- symbolic differentiation with light simplification ----------------------------------------

def _num(value: float) -> ast.expr:
    return ast.Constant(value=value)


def _value_of(node: ast.expr) -> float | None:
    if isinstance(node, ast.Constant):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _value_of(node.operand)
        return None if inner is None else -inner
    return None


def _add(a: ast.expr, b: ast.expr) -> ast.expr:
    if _value_of(a) == 0.0:
        return b
    if _value_of(b) == 0.0:
        return a
    return ast.BinOp(left=a, op=ast.Add(), right=b)


def _sub(a: ast.expr, b: ast.expr) -> ast.expr:
    if _value_of(b) == 0.0:
        return a
    if _value_of(a) == 0.0:
        return ast.UnaryOp(op=ast.USub(), operand=b)
    return ast.BinOp(left=a, op=ast.Sub(), right=b)


def _mul(a: ast.expr, b: ast.expr) -> ast.expr:
    if _value_of(a) == 0.0 or _value_of(b) == 0.0:
        return _num(0.0)
    if _value_of(a) == 1.0:
        return b
    if _value_of(b) == 1.0:
        return a
    return ast.BinOp(left=a, op=ast.Mult(), right=b)


def _div(a: ast.expr, b: ast.expr) -> ast.expr:
    if _value_of(a) == 0.0:
        return _num(0.0)
    if _value_of(b) == 1.0:
        return a
    return ast.BinOp(left=a, op=ast.Div(), right=b)


def _call(name: str, arg: ast.expr) -> ast.expr:
    return ast.Call(func=ast.Name(id=name, ctx=ast.Load()), args=[arg], keywords=[])


def _derivative(node: ast.expr, symbol: str) -> ast.expr:
    """d node / d symbol as a new tree."""
    if isinstance(node, ast.Constant):
        return _num(0.0)
    if isinstance(node, ast.Name):
        return _num(1.0 if node.id == symbol else 0.0)
    if isinstance(node, ast.UnaryOp):
        inner = _derivative(node.operand, symbol)
        if isinstance(node.op, ast.UAdd) or _value_of(inner) == 0.0:
            return inner
        return ast.UnaryOp(op=ast.USub(), operand=inner)
    if isinstance(node, ast.BinOp):
        u, v = node.left, node.right
        du, dv = _derivative(u, symbol), _derivative(v, symbol)
        if isinstance(node.op, ast.Add):
            return _add(du, dv)
        if isinstance(node.op, ast.Sub):
            return _sub(du, dv)
        if isinstance(node.op, ast.Mult):
            return _add(_mul(du, v), _mul(u, dv))
        if isinstance(node.op, ast.Div):
            # (du v - u dv) / v^2  written as du/v - u dv / v^2
            return _sub(_div(du, v), _div(_mul(u, dv), _mul(v, v)))
        if isinstance(node.op, ast.Pow):
            exponent = _value_of(v)
            if exponent == 0.0:
                return _num(0.0)
            power = ast.BinOp(left=u, op=ast.Pow(), right=_num(exponent - 1.0))
            return _mul(_mul(_num(exponent), power), du)
    if isinstance(node, ast.Call):
        arg = node.args[0]
        darg = _derivative(arg, symbol)
        if _value_of(darg) == 0.0:
            return _num(0.0)
        name = node.func.id
        if name == "exp":
            return _mul(node, darg)
        if name == "log":
            return _div(darg, arg)
        if name == "sqrt":
            return _div(darg, _mul(_num(2.0), node))
    raise AssertionError(f"unhandled node {ast.dump(node)}")  # _check() admits nothing else


class ExpressionSet:
    """Many expressions compiled into one function returning values and a Jacobian.

    Parameters
    ----------
    expressions : sequence of Expression
        The expressions, in the order of the output columns.
    parameters : sequence of str
        Names of the parameters, in the order of the parameter vector. Every symbol of every
        expression must be a parameter or a constant.
    constants : mapping of str to float
        Fixed symbol values (physiology, switches); no derivative is taken with respect to them.

    Examples
    --------
    >>> exprs = [parse_expression("CL / V"), parse_expression("2 * V")]
    >>> compiled = ExpressionSet(exprs, ["CL", "V"], {})
    >>> values, jac = compiled(np.array([[1.0, 4.0]]))
    >>> values.tolist(), jac[0].tolist()
    ([[0.25, 8.0]], [[0.25, -0.0625], [0.0, 2.0]])
    """

    def __init__(self, expressions: Sequence[Expression], parameters: Sequence[str],
                 constants: dict[str, float]):
        self.expressions = tuple(expressions)
        self.parameters = tuple(parameters)
        index = {name: i for i, name in enumerate(self.parameters)}
        for expr in self.expressions:
            unknown = expr.symbols - index.keys() - constants.keys()
            if unknown:
                raise ModelFileError(f"unknown symbol(s) {', '.join(sorted(unknown))} in '{expr.text}'")
        symbols = sorted(set().union(*(e.symbols for e in self.expressions)))
        # generated code names symbols _s0, _s1, ... so no symbol can clash with its own names
        local = {name: f"_s{i}" for i, name in enumerate(symbols)}
        derivatives = []                       # (row, parameter column, derivative source)
        for row, expr in enumerate(self.expressions):
            for name in sorted(expr.symbols & index.keys()):
                derivative = _derivative(expr.tree, name)
                if _value_of(derivative) != 0.0:
                    derivatives.append((row, index[name], _source(derivative, local)))
        self._jac_rows = np.array([r for r, _, _ in derivatives], dtype=int)
        self._jac_cols = np.array([c for _, c, _ in derivatives], dtype=int)
        values_source = [_source(e.tree, local) for e in self.expressions]
        derivative_source = [text for _, _, text in derivatives]
        self._values_scalar, self._both_scalar, self._values_array, self._both_array = (
            self._generate(index, constants, local, values_source, derivative_source,
                           scalar=scalar, with_derivatives=both)
            for scalar, both in ((True, False), (True, True), (False, False), (False, True)))

    def _generate(self, index, constants, local, values_source, derivative_source, *, scalar,
                  with_derivatives) -> Callable:
        """Source of a function of a parameter sequence ``p`` returning tuples of results.

        With ``scalar`` the symbols are Python floats (one parameter set, no numpy overhead);
        otherwise they are arrays over the batch. ``local`` maps symbols to generated names.
        """
        lines = ["def _evaluate(p):"]
        for name in sorted(local.keys() & index.keys()):
            lines.append(f"    {local[name]} = p[{index[name]}]")
        for name in sorted(local.keys() - index.keys()):
            lines.append(f"    {local[name]} = {float(constants[name])!r}")
        lines.append(f"    values = {_tuple(values_source)}")
        if with_derivatives:
            lines.append(f"    derivatives = {_tuple(derivative_source)}")
            lines.append("    return values, derivatives")
        else:
            lines.append("    return values")
        functions = math if scalar else np
        namespace = {"exp": functions.exp, "log": functions.log, "sqrt": functions.sqrt}
        exec(compile("\n".join(lines), "<exopk expressions>", "exec"), namespace)
        return namespace["_evaluate"]

    def __call__(self, parameters: np.ndarray, *, derivatives: bool = True):
        """Evaluate every expression on a batch of parameter vectors.

        Parameters
        ----------
        parameters : ndarray, shape (batch, n_parameters)
        derivatives : bool
            Also return the Jacobian.

        Returns
        -------
        values : ndarray, shape (batch, n_expressions)
        jacobian : ndarray, shape (batch, n_expressions, n_parameters)
            Only with ``derivatives``.
        """
        batch = parameters.shape[0]
        n_expr, n_par = len(self.expressions), len(self.parameters)
        if 0 < batch <= SCALAR_BATCH:
            # Python floats member by member: cheaper than numpy calls on short columns
            function = self._both_scalar if derivatives else self._values_scalar
            try:
                results = [function(row) for row in parameters.tolist()]
            except (ArithmeticError, ValueError):
                pass  # division by zero or log of a negative: let numpy give inf or nan
            else:
                if derivatives:
                    result = ([r[0] for r in results], [r[1] for r in results])
                else:
                    result = results
                return self._assemble(result, derivatives, batch, n_expr, n_par,
                                      lambda raw: np.array(raw, dtype=float).reshape(batch, -1))
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            result = (self._both_array if derivatives else self._values_array)(list(parameters.T))
        return self._assemble(result, derivatives, batch, n_expr, n_par,
                              lambda raw: _columns(raw, batch))

    def _assemble(self, result, derivatives, batch, n_expr, n_par, to_columns):
        if not derivatives:
            return to_columns(result) if n_expr else np.zeros((batch, 0))
        raw_values, raw_derivatives = result
        values = to_columns(raw_values) if n_expr else np.zeros((batch, 0))
        jacobian = np.zeros((batch, n_expr, n_par))
        if self._jac_rows.size:
            jacobian[:, self._jac_rows, self._jac_cols] = to_columns(raw_derivatives)
        return values, jacobian


def _source(tree: ast.expr, local: dict[str, str]) -> str:
    """Python source of ``tree`` with every symbol renamed to its generated local name."""
    renamed = ast.Expression(body=tree)
    renamed = _Rename(local).visit(copy.deepcopy(renamed))
    return ast.unparse(renamed.body)


class _Rename(ast.NodeTransformer):
    def __init__(self, local):
        self.local = local

    def visit_Name(self, node):
        return ast.Name(id=self.local.get(node.id, node.id), ctx=node.ctx)


def _tuple(sources: list[str]) -> str:
    return f"({', '.join(sources)},)" if sources else "()"


def _columns(raw, batch):
    """Stack scalars and length-``batch`` arrays as the columns of a (batch, n) array."""
    out = np.empty((len(raw), batch))
    for j, value in enumerate(raw):
        out[j] = value
    return out.T
