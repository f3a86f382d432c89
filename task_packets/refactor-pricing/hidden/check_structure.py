"""Hidden gate: the money arithmetic lives in shop/money.py only.

Fails (exit 1, one line per problem) unless:
- shop/money.py defines round_cents, apply_discount and tax_on at module level;
- cart.py, invoice.py and refunds.py each import from shop.money;
- no other module in shop/ rounds (``.quantize``, ``ROUND_HALF_UP``) or
  computes a percentage discount (``Decimal(100)``) itself.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = Path("shop")
HELPERS = {"round_cents", "apply_discount", "tax_on"}
USERS = ("cart.py", "invoice.py", "refunds.py")


def imports_money(tree: ast.Module) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1 and node.module == "money":
                return True
            if node.level == 1 and node.module is None and any(a.name == "money" for a in node.names):
                return True
            if node.level == 0 and node.module == "shop.money":
                return True
            if node.level == 0 and node.module == "shop" and any(a.name == "money" for a in node.names):
                return True
        if isinstance(node, ast.Import) and any(a.name == "shop.money" for a in node.names):
            return True
    return False


def money_arithmetic(tree: ast.Module) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "quantize":
            found.append((node.lineno, "rounds with .quantize()"))
        elif isinstance(node, (ast.Name, ast.Attribute)) and getattr(node, "id", getattr(node, "attr", "")) in (
            "ROUND_HALF_UP",
            "ROUND_HALF_EVEN",
        ):
            found.append((node.lineno, "uses a rounding mode"))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "Decimal"
            and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant)
            and str(node.args[0].value) == "100"
        ):
            found.append((node.lineno, "computes a percentage with Decimal(100)"))
    return found


def main() -> int:
    problems = []
    money = PACKAGE / "money.py"
    if not money.is_file():
        print("shop/money.py does not exist")
        return 1
    tree = ast.parse(money.read_text(), str(money))
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name in sorted(HELPERS - defined):
        problems.append(f"shop/money.py: no module-level function {name}()")
    for path in sorted(PACKAGE.glob("*.py")):
        if path.name == "money.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        if path.name in USERS and not imports_money(tree):
            problems.append(f"{path}: does not import from shop.money")
        for lineno, what in money_arithmetic(tree):
            problems.append(f"{path}:{lineno}: {what}; that belongs in shop/money.py")
    for problem in problems:
        print(problem)
    if not problems:
        print("ok: money arithmetic is only in shop/money.py")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
