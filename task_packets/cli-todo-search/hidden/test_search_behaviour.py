"""Hidden gate: `todo search TERM [--all]` output and exit status, as the prompt specifies."""

import pytest
from cli_helpers import run_todo, write_tasks

TASKS = [
    ("Buy milk", False),
    ("call Bob about the MILK order", True),
    ("Water plants", False),
    ("buy stamps", False),
    ("Milkshake recipe", False),
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "tasks.json"
    write_tasks(path, TASKS)
    return path


def test_matches_open_tasks_case_insensitively_in_list_format(db):
    result = run_todo(db, "search", "milk")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "  1 [ ] Buy milk\n  5 [ ] Milkshake recipe\n"
    assert result.stderr == ""


def test_term_case_does_not_matter(db):
    assert run_todo(db, "search", "BUY").stdout == "  1 [ ] Buy milk\n  4 [ ] buy stamps\n"


def test_all_includes_done_tasks(db):
    result = run_todo(db, "search", "--all", "milk")
    assert result.returncode == 0
    assert result.stdout == (
        "  1 [ ] Buy milk\n  2 [x] call Bob about the MILK order\n  5 [ ] Milkshake recipe\n"
    )


def test_all_after_term(db):
    assert run_todo(db, "search", "bob", "--all").stdout == "  2 [x] call Bob about the MILK order\n"


def test_multi_word_term_is_one_substring(db):
    assert run_todo(db, "search", "water plants").stdout == "  3 [ ] Water plants\n"


def test_no_match_exits_1_with_message_on_stderr(db):
    result = run_todo(db, "search", "bob")  # only a done task matches
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no tasks match 'bob'" in result.stderr


def test_empty_db(tmp_path):
    result = run_todo(tmp_path / "missing.json", "search", "anything")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "no tasks match 'anything'" in result.stderr
