"""Hidden gate (guard): the change touches documentation only.

Every path that differs from HEAD (modified, added, deleted, untracked) must be
Markdown, or a Python file whose code is unchanged: its syntax tree with every
docstring removed equals the committed one, so docstrings and comments may
change, code may not. Gate files (.gates/) and caches are ignored.
"""

from __future__ import annotations

import ast
import subprocess
import sys

IGNORED_PREFIXES = (".gates/", ".pytest_cache/")


def git(*args: str) -> str:
    return subprocess.run(["git", *args], capture_output=True, text=True, check=True).stdout


def changed_paths() -> list[tuple[str, str]]:
    entries = []
    for line in git("status", "--porcelain=v1", "--untracked-files=all", "--no-renames").splitlines():
        status, path = line[:2], line[3:].strip('"')
        if path.startswith(IGNORED_PREFIXES) or "__pycache__/" in path or path.endswith(".pyc"):
            continue
        entries.append((status, path))
    return entries


def code_only(source: str) -> str:
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return ast.dump(tree, include_attributes=False)


def problem(status: str, path: str) -> str | None:
    if path.endswith(".md") or path.startswith("docs/"):
        return None
    if not path.endswith(".py"):
        return f"{path}: not documentation"
    if "D" in status:
        return f"{path}: deleted"
    if status == "??" or "A" in status:
        return f"{path}: new Python file"
    try:
        before = code_only(git("show", f"HEAD:{path}"))
        with open(path, encoding="utf-8") as f:
            after = code_only(f.read())
    except SyntaxError as exc:
        return f"{path}: does not parse any more ({exc.msg}, line {exc.lineno})"
    return None if before == after else f"{path}: code changed, not just docstrings or comments"


def main() -> int:
    problems = [p for p in (problem(status, path) for status, path in changed_paths()) if p]
    for p in problems:
        print(p)
    if not problems:
        print("ok: only documentation changed")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
