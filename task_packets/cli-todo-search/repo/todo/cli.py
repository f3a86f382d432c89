"""The ``todo`` command line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .store import Store, StoreError, Task, default_path


def format_task(task: Task) -> str:
    return f"{task.id:>3} [{'x' if task.done else ' '}] {task.title}"


def cmd_add(store: Store, args: argparse.Namespace) -> int:
    title = " ".join(args.title).strip()
    if not title:
        args.parser.error("the task title must not be empty")
    task = store.add(title)
    print(f"added {task.id}: {task.title}")
    return 0


def cmd_list(store: Store, args: argparse.Namespace) -> int:
    for task in store.load():
        if args.all or not task.done:
            print(format_task(task))
    return 0


def cmd_done(store: Store, args: argparse.Namespace) -> int:
    task = store.mark_done(args.id)
    if task is None:
        print(f"no task with id {args.id}", file=sys.stderr)
        return 1
    print(f"done {task.id}: {task.title}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="todo", description="A tiny to-do list for the terminal.")
    parser.add_argument("--db", type=Path, default=None, help="task file (default: $TODO_DB or ~/.todo.json)")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    add = commands.add_parser("add", help="add a task")
    add.add_argument("title", nargs="+", help="what to do")
    add.set_defaults(func=cmd_add, parser=add)

    list_ = commands.add_parser("list", help="show open tasks")
    list_.add_argument("--all", action="store_true", help="include tasks that are done")
    list_.set_defaults(func=cmd_list, parser=list_)

    done = commands.add_parser("done", help="mark a task as done")
    done.add_argument("id", type=int, help="the task's id (see `todo list`)")
    done.set_defaults(func=cmd_done, parser=done)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    store = Store(args.db or default_path())
    try:
        return args.func(store, args)
    except StoreError as exc:
        print(f"todo: {exc}", file=sys.stderr)
        return 1
