import pytest

from todo.cli import main


@pytest.fixture
def todo(tmp_path, capsys):
    db = tmp_path / "tasks.json"

    def run(*argv):
        code = main(["--db", str(db), *argv])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_add_and_list(todo):
    assert todo("add", "buy", "milk") == (0, "added 1: buy milk\n", "")
    todo("add", "call Bob")
    assert todo("list") == (0, "  1 [ ] buy milk\n  2 [ ] call Bob\n", "")


def test_done_hides_task_unless_all(todo):
    todo("add", "buy milk")
    todo("add", "call Bob")
    assert todo("done", "1") == (0, "done 1: buy milk\n", "")
    assert todo("list")[1] == "  2 [ ] call Bob\n"
    assert todo("list", "--all")[1] == "  1 [x] buy milk\n  2 [ ] call Bob\n"


def test_done_unknown_id(todo):
    code, out, err = todo("done", "7")
    assert (code, out) == (1, "")
    assert "no task with id 7" in err


def test_empty_title_is_a_usage_error(todo, capsys):
    with pytest.raises(SystemExit) as info:
        todo("add", "  ")
    assert info.value.code == 2
    assert "must not be empty" in capsys.readouterr().err


def test_corrupt_db(tmp_path, capsys):
    db = tmp_path / "tasks.json"
    db.write_text("{not json")
    assert main(["--db", str(db), "list"]) == 1
    assert "cannot read" in capsys.readouterr().err
