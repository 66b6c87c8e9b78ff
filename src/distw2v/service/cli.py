"""`distw2v serve|submit|jobs|cancel`: the service's commands, added to the main parser."""

from __future__ import annotations

import argparse
from collections.abc import Callable

CommandFactory = Callable[[str, str], argparse.ArgumentParser]


def add_commands(command: CommandFactory) -> None:
    """Register the service subcommands through the main parser's `command(name, help)`."""
