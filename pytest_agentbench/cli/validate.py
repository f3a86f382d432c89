"""``agentbench validate [DIR ...]``: read models.yaml and every packet strictly, run nothing.

Every packet gets its own verdict line (``ok``, ``FAIL`` with the file, the key and the fix,
``warn`` for a packet that loads but may not work as meant): one bad packet never hides the
others. Exit status: 0 all good, 1 a packet or the models file is invalid, 2 a folder that does
not exist or holds no ``packet.yaml`` (a usage error, as for ``check-packets``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pytest_agentbench.errors import ConfigError
from pytest_agentbench.packets.schema import PROMPT_WARN_BYTES


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    v = sub.add_parser(
        "validate",
        help="check models.yaml and task packets strictly, without running anything",
        description="Check models.yaml and every task packet strictly, without running anything; "
        "every packet gets its own verdict.",
    )
    v.add_argument(
        "folders", nargs="*", metavar="DIR", help="packet folders, or folders of packets (default: task_packets)"
    )
    v.add_argument("--packets", action="append", metavar="DIR", help="the same as a DIR argument (repeatable)")
    v.add_argument("--models-file", default="models.yaml", help="the models.yaml to check (default: models.yaml)")
    add_prompt_cap_argument(v)
    v.set_defaults(func=run)


def add_prompt_cap_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prompt-warn-kb",
        type=float,
        default=PROMPT_WARN_BYTES / 1024,
        metavar="KB",
        help=f"warn about prompts larger than this many KiB (default: {PROMPT_WARN_BYTES // 1024}; 0: never)",
    )


def prompt_cap(args: argparse.Namespace) -> int | None:
    """``--prompt-warn-kb`` in bytes; None (no cap) for 0."""
    kb = args.prompt_warn_kb
    return int(kb * 1024) if kb and kb > 0 else None


def _check_models(args: argparse.Namespace) -> int:
    from pytest_agentbench.models.registry import load_models

    models_file = Path(args.models_file)
    if not models_file.exists() and args.models_file == "models.yaml":
        return 0  # no models file here, and none asked for: packets only
    try:
        specs = load_models(models_file)
    except ConfigError as exc:
        print(f"FAIL {exc}")
        return 1
    print(f"ok   {models_file}: {len(specs)} alias(es): {', '.join(specs)}")
    for spec in specs.values():
        if spec.unresolved:
            print(f"note {spec.where}: needs {', '.join(spec.unresolved)} set to be used")
    return 0


def run(args: argparse.Namespace) -> int:
    from pytest_agentbench.packets.schema import find_packet_files, load_each

    failed = _check_models(args)
    usage = 0
    folders = [Path(f) for f in [*(args.folders or []), *(args.packets or [])]] or [Path("task_packets")]
    verdicts = []
    for folder in folders:
        if not folder.is_dir():
            print(f"FAIL {folder}: no such folder: pass the folder that holds your packets (or one packet)")
            usage += 1
            continue
        files = find_packet_files([folder])
        if not files:
            print(f"FAIL {folder}: no packet.yaml found below it: each packet is a folder with a packet.yaml")
            usage += 1
        verdicts += load_each(files, prompt_warn_bytes=prompt_cap(args))
    for loaded in verdicts:
        if loaded.packet is not None:
            p = loaded.packet
            phases = f", {len(p.phases)} phase(s): {', '.join(f.id for f in p.phases)}" if p.phases else ""
            print(f"ok   {p.file}: {p.id} ({p.kind}, {len(p.gates)} gate(s){phases})")
        else:
            print(f"FAIL {loaded.error}")
        for note in loaded.warnings:
            print(f"warn {note}")
    bad = sum(loaded.packet is None for loaded in verdicts)
    print(f"{len(verdicts)} packet(s): {len(verdicts) - bad} ok, {bad} invalid")
    if usage:
        return 2
    return 1 if bad or failed else 0
