"""Hidden gates: the docs describe the 2.0.0 API (see CHANGELOG.md).

    python .gates/check_docs.py readme-names     README names base_delay, max_delay (with its default), retry_on;
                                                 no stale `delay` option left
    python .gates/check_docs.py readme-examples  README's doctests run, there are some, and they use the new options
    python .gates/check_docs.py docstrings       RetryPolicy's and retry_call's docstrings are current

Exit 0 when the check holds; otherwise exit 1 with one line per problem.
"""

from __future__ import annotations

import ast
import doctest
import os
import re
import sys
from pathlib import Path

README = Path("README.md")
# The removed option still documented as one: a keyword argument (delay=0.5), a row of
# an options table (| `delay` | ...) or a field line (delay: seconds ...). Mentioning the
# rename in prose ("renamed from `delay`") is fine.
STALE = re.compile(r"(?<![\w.])delay\s*=|^\s*\|\s*`?delay`?\s*\||^\s*`?delay`?\s*:", re.MULTILINE)
MIN_EXAMPLES = 5


def readme_names() -> list[str]:
    text = README.read_text()
    problems = [f"README.md does not mention `{name}`" for name in ("base_delay", "max_delay", "retry_on")
                if name not in text]
    if "max_delay" in text and not any("max_delay" in line and "30" in line for line in text.splitlines()):
        problems.append("README.md never gives max_delay's default (30 seconds) next to it")
    for lineno, line in enumerate(text.splitlines(), 1):
        if STALE.search(line):
            problems.append(f"README.md:{lineno}: still documents the removed `delay` option: {line.strip()}")
    return problems


def readme_examples() -> list[str]:
    sys.path.insert(0, os.getcwd())
    text = README.read_text()
    parser = doctest.DocTestParser()
    test = parser.get_doctest(text, {}, "README.md", str(README), 0)
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    runner.run(test)
    result = runner.summarize(verbose=False)
    problems = []
    if result.failed:
        problems.append(f"{result.failed} of {result.attempted} README example(s) fail (python -m doctest README.md)")
    if result.attempted < MIN_EXAMPLES:
        problems.append(f"README.md has only {result.attempted} doctest example(s); the usage examples were removed?")
    if not any("base_delay" in ex.source or "max_delay" in ex.source for ex in test.examples):
        problems.append("no README example uses base_delay or max_delay")
    return problems


def docstring(tree: ast.Module, name: str) -> str:
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == name:
            return ast.get_docstring(node) or ""
    return ""


def docstrings() -> list[str]:
    problems = []
    policy = docstring(ast.parse(Path("retrykit/policy.py").read_text()), "RetryPolicy")
    for name in ("base_delay", "max_delay"):
        if name not in policy:
            problems.append(f"RetryPolicy's docstring does not mention {name}")
    if STALE.search(policy):
        problems.append("RetryPolicy's docstring still documents the removed `delay` option")
    call = docstring(ast.parse(Path("retrykit/call.py").read_text()), "retry_call")
    if "retry_on" not in call:
        problems.append("retry_call's docstring does not mention retry_on")
    if re.search(r"\bany exception\b", call, re.IGNORECASE):
        problems.append("retry_call's docstring still says any exception is retried")
    return problems


CHECKS = {"readme-names": readme_names, "readme-examples": readme_examples, "docstrings": docstrings}


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in CHECKS:
        print(f"usage: check_docs.py {{{','.join(CHECKS)}}}", file=sys.stderr)
        return 2
    problems = CHECKS[argv[0]]()
    for problem in problems:
        print(problem)
    if not problems:
        print(f"ok: {argv[0]}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
