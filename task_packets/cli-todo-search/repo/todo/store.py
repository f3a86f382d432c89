"""Tasks and the JSON file they are kept in."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass
class Task:
    id: int
    title: str
    done: bool = False


class StoreError(Exception):
    """The task file cannot be read or written."""


def default_path() -> Path:
    return Path(os.environ.get("TODO_DB") or Path.home() / ".todo.json")


class Store:
    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Task]:
        if not self.path.exists():
            return []
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return [Task(**item) for item in raw["tasks"]]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise StoreError(f"cannot read {self.path}: {exc}") from exc

    def save(self, tasks: list[Task]) -> None:
        data = {"tasks": [asdict(task) for task in tasks]}
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        try:
            tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
            tmp.replace(self.path)
        except OSError as exc:
            raise StoreError(f"cannot write {self.path}: {exc}") from exc

    def add(self, title: str) -> Task:
        tasks = self.load()
        task = Task(id=max((t.id for t in tasks), default=0) + 1, title=title)
        tasks.append(task)
        self.save(tasks)
        return task

    def mark_done(self, task_id: int) -> Task | None:
        tasks = self.load()
        for task in tasks:
            if task.id == task_id:
                task.done = True
                self.save(tasks)
                return task
        return None
