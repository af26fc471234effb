"""Every option and argument of dqueue-cli, dqueue-worker and bin/dqueue has help text."""

from __future__ import annotations

import argparse
from collections.abc import Callable

import pytest

from dqueue import cli, config_loader
from dqueue.worker import main as worker_main


def undescribed(parser: argparse.ArgumentParser, path: str = "") -> list[str]:
    """Every action of ``parser`` and of its subcommands (recursively) without help, as
    ``"prog sub option"`` strings; a subcommand without a help line counts too."""
    path = path or parser.prog
    missing: list[str] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest for choice in action._choices_actions
                         if choice.help and choice.help != argparse.SUPPRESS}
            for name, sub in action.choices.items():
                if name not in described:
                    missing.append(f"{path} {name} (the subcommand)")
                missing.extend(undescribed(sub, f"{path} {name}"))
        elif not (action.help or "").strip() or action.help == argparse.SUPPRESS:
            missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    return missing


@pytest.mark.parametrize("build", [cli.build_parser, worker_main.build_parser,
                                   config_loader.build_parser],
                         ids=["dqueue-cli", "dqueue-worker", "dqueue"])
def test_every_action_has_help(build: Callable[[], argparse.ArgumentParser]) -> None:
    assert undescribed(build()) == []


def test_the_walk_finds_a_missing_help_in_a_nested_subcommand() -> None:
    parser = argparse.ArgumentParser(prog="p")
    parser.add_argument("--fine", help="described")
    sub = parser.add_subparsers(dest="cmd")
    one = sub.add_parser("one", help="described")
    inner = one.add_subparsers(dest="inner").add_parser("two")
    inner.add_argument("target")
    inner.add_argument("--flag", help="")
    assert undescribed(parser) == ["p one two (the subcommand)", "p one two target",
                                   "p one two --flag"]
