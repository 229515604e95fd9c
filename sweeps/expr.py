"""Small, safe boolean expressions over a row's fields, for ``where:`` in a spec and ``--where``.

    compute.rows <= compute.cols and sparsity != "dense"
    model in ["resnet18", "resnet50"] or not (batch > 1)

Names are the fields of the row (dotted names such as ``compute.rows`` included); the grammar is
Python's for comparisons, ``and``/``or``/``not``, arithmetic, literals and lists. Nothing else
(no calls, no attribute access on values, no subscripts) is accepted.
"""
from __future__ import annotations

import ast
import operator
from typing import Any, Mapping

from .errors import SweepError

_CMP = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
        ast.Gt: operator.gt, ast.GtE: operator.ge, ast.In: lambda a, b: a in b,
        ast.NotIn: lambda a, b: a not in b}
_BIN = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


def _dotted(node) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


class Expr:
    """A compiled expression; ``names`` are the fields it reads."""

    def __init__(self, text: str, where: str, known: set[str] | None = None):
        self.text, self.where = text, where
        if not isinstance(text, str) or not text.strip():
            raise SweepError(f"{where}: expected an expression such as 'compute.rows <= 32', got {text!r}")
        try:
            tree = ast.parse(text.strip(), mode="eval")
        except SyntaxError as e:
            raise SweepError(f"{where}: not a valid expression: {text!r} ({e.msg})") from None
        self.names: set[str] = set()
        self._check(tree.body)
        self.tree = tree.body
        if known is not None:
            unknown = sorted(self.names - known)
            if unknown:
                raise SweepError(f"{where}: unknown name '{unknown[0]}' in {text!r}; "
                                 f"known: {', '.join(sorted(known))}")

    def _check(self, node) -> None:
        name = _dotted(node)
        if name is not None:
            self.names.add(name)
            return
        if isinstance(node, ast.Constant):
            return
        if isinstance(node, (ast.List, ast.Tuple)):
            for e in node.elts:
                self._check(e)
            return
        if isinstance(node, ast.BoolOp):
            for v in node.values:
                self._check(v)
            return
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.Not, ast.USub, ast.UAdd)):
            self._check(node.operand)
            return
        if isinstance(node, ast.Compare) and all(type(o) in _CMP for o in node.ops):
            self._check(node.left)
            for c in node.comparators:
                self._check(c)
            return
        if isinstance(node, ast.BinOp) and type(node.op) in _BIN:
            self._check(node.left)
            self._check(node.right)
            return
        raise SweepError(f"{self.where}: {ast.unparse(node)!r} is not allowed in {self.text!r} "
                         f"(use names, literals, comparisons, and/or/not, arithmetic)")

    def __call__(self, row: Mapping[str, Any]) -> bool:
        try:
            return bool(self._eval(self.tree, row))
        except SweepError:
            raise
        except Exception as e:
            raise SweepError(f"{self.where}: {self.text!r} failed on {dict(row)}: {type(e).__name__}: {e}") from None

    def _eval(self, node, row):
        name = _dotted(node)
        if name is not None:
            if name not in row:
                raise SweepError(f"{self.where}: unknown name '{name}' in {self.text!r}; "
                                 f"known: {', '.join(sorted(row))}")
            return row[name]
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self._eval(e, row) for e in node.elts]
        if isinstance(node, ast.BoolOp):
            if isinstance(node.op, ast.And):
                return all(self._eval(v, row) for v in node.values)
            return any(self._eval(v, row) for v in node.values)
        if isinstance(node, ast.UnaryOp):
            v = self._eval(node.operand, row)
            return (not v) if isinstance(node.op, ast.Not) else (-v if isinstance(node.op, ast.USub) else +v)
        if isinstance(node, ast.Compare):
            left = self._eval(node.left, row)
            for op, comp in zip(node.ops, node.comparators):
                right = self._eval(comp, row)
                if not _CMP[type(op)](left, right):
                    return False
                left = right
            return True
        return _BIN[type(node.op)](self._eval(node.left, row), self._eval(node.right, row))
