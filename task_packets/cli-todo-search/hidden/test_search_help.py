"""Hidden gate: `todo --help` lists the search command; `todo search --help` documents it."""

import re

from cli_helpers import run_todo


def test_top_level_help_lists_search(tmp_path):
    result = run_todo(tmp_path / "tasks.json", "--help")
    assert result.returncode == 0
    assert re.search(r"^\s+search\s+\S", result.stdout, re.MULTILINE), result.stdout


def test_search_help(tmp_path):
    result = run_todo(tmp_path / "tasks.json", "search", "--help")
    assert result.returncode == 0, result.stderr
    assert "--all" in result.stdout
    assert re.search(r"usage: todo search .*\[--all\]", result.stdout) or "[--all]" in result.stdout
