"""Arithmetic expressions over model symbols, with exact derivatives.

Model files write rates, clearances, volumes, dose split fractions and output weights as small
arithmetic expressions (``"CL / V_plasma"``, ``"k_liver * (1 - f_macrophage * depleted)"``).
This module parses them with :mod:`ast`, differentiates them symbolically and generates one
straight-line numpy function that returns every expression's value and its Jacobian with respect
to the model's parameters. The generated function works on a batch of parameter sets at once.

Allowed syntax: numbers, symbol names, ``+ - * /``, ``**`` with a constant exponent, unary minus,
and the functions ``exp``, ``log``, ``sqrt``.
"""

from __future__ import annotations

import ast
import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from exopk.errors import ModelFileError

__all__ = ["Expression", "ExpressionSet", "parse_expression"]

_FUNCTIONS = ("exp", "log", "sqrt")


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
    elif isinstance(node, ast.Constant):
        if not isinstance(node.value, (int, float)) or isinstance(node.value, bool):
            raise ModelFileError(f"constant {node.value!r} is not a number in '{text}'", key=where)
    elif isinstance(node, ast.Name):
        if node.id in _FUNCTIONS:
            raise ModelFileError(f"'{node.id}' is a function, not a symbol, in '{text}'", key=where)
    else:
        raise ModelFileError(f"'{text}' is not an arithmetic expression "
                             f"({type(node).__name__} not allowed)", key=where)


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
    try:
        tree = ast.parse(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ModelFileError(f"cannot parse expression '{text}': {exc.msg}", key=where) from None
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
        derivatives = []                       # (row, parameter column, derivative source)
        for row, expr in enumerate(self.expressions):
            for name in sorted(expr.symbols & index.keys()):
                derivative = _derivative(expr.tree, name)
                if _value_of(derivative) != 0.0:
                    derivatives.append((row, index[name], ast.unparse(derivative)))
        self._jac_rows = np.array([r for r, _, _ in derivatives], dtype=int)
        self._jac_cols = np.array([c for _, c, _ in derivatives], dtype=int)
        values_source = [ast.unparse(e.tree) for e in self.expressions]
        derivative_source = [text for _, _, text in derivatives]
        self._values_scalar, self._both_scalar, self._values_array, self._both_array = (
            self._generate(index, constants, values_source, derivative_source, scalar=scalar,
                           with_derivatives=both)
            for scalar, both in ((True, False), (True, True), (False, False), (False, True)))

    def _generate(self, index, constants, values_source, derivative_source, *, scalar,
                  with_derivatives) -> Callable:
        """Source of a function of a parameter sequence ``p`` returning tuples of results.

        With ``scalar`` the symbols are Python floats (one parameter set, no numpy overhead);
        otherwise they are arrays over the batch.
        """
        symbols = set().union(*(e.symbols for e in self.expressions)) if self.expressions else set()
        lines = ["def _evaluate(p):"]
        for name in sorted(symbols & index.keys()):
            lines.append(f"    {name} = p[{index[name]}]")
        for name in sorted(symbols - index.keys()):
            lines.append(f"    {name} = {float(constants[name])!r}")
        lines.append(f"    values = ({', '.join(values_source)},)")
        if with_derivatives:
            lines.append(f"    derivatives = ({', '.join(derivative_source)},)")
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
        if batch == 1:
            try:
                result = (self._both_scalar if derivatives else self._values_scalar)(
                    parameters[0].tolist())
                return self._assemble(result, derivatives, 1, n_expr, n_par,
                                      lambda raw: np.array(raw, dtype=float)[None])
            except (ArithmeticError, ValueError):
                pass  # division by zero or log of a negative: let numpy give inf or nan
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
        if len(raw_derivatives):
            jacobian[:, self._jac_rows, self._jac_cols] = to_columns(raw_derivatives)
        return values, jacobian


def _columns(raw, batch):
    """Stack scalars and length-``batch`` arrays as the columns of a (batch, n) array."""
    out = np.empty((len(raw), batch))
    for j, value in enumerate(raw):
        out[j] = value
    return out.T
