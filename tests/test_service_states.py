"""A job's states have one home, `service.store.State`; the REST models use that Literal, and
the command line (which does not import the store) must list the same states."""

from __future__ import annotations

import argparse
from typing import get_args

import pytest

from distw2v.service import cli, schemas
from distw2v.service.store import ACTIVE, FINISHED, STATES, State

pytestmark = pytest.mark.service


def test_states_are_declared_once() -> None:
    assert STATES == get_args(State) == ("queued", "running", "succeeded", "failed",
                                         "cancelled")
    assert schemas.State is State
    assert set(ACTIVE) | set(FINISHED) == set(STATES) and not set(ACTIVE) & set(FINISHED)


def test_the_command_line_lists_the_stores_states() -> None:
    parsers: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, help_text: str) -> argparse.ArgumentParser:
        parsers[name] = argparse.ArgumentParser(name, description=help_text)
        return parsers[name]

    cli.add_commands(command)
    state = next(a for a in parsers["jobs"]._actions if a.dest == "state")
    assert tuple(state.choices or ()) == STATES
    assert cli.FINISHED == FINISHED
