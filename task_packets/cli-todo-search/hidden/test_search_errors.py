"""Hidden gate: bad input to `todo search` is a clear usage error (exit 2, message on stderr)."""

import pytest
from cli_helpers import run_todo, write_tasks


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "tasks.json"
    write_tasks(path, [("Buy milk", False)])
    return path


@pytest.mark.parametrize("term", ["", "   "])
def test_blank_term(db, term):
    result = run_todo(db, "search", term)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "search term must not be empty" in result.stderr
    assert "usage: todo search" in result.stderr


def test_missing_term(db):
    result = run_todo(db, "search")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: todo search" in result.stderr


def test_unknown_option(db):
    # argparse reports unknown options from the top-level parser: "usage: todo ...".
    result = run_todo(db, "search", "--fuzzy", "milk")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "usage: todo" in result.stderr
    assert "--fuzzy" in result.stderr
