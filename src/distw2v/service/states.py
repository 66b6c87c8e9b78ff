"""A job's states, their one home: the store, the REST models and the command line all use
these (a module of its own, so that the command line needs neither SQLAlchemy nor pydantic)."""

from __future__ import annotations

from typing import Literal, get_args

State = Literal["queued", "running", "succeeded", "failed", "cancelled"]
STATES: tuple[State, ...] = get_args(State)
QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = STATES
ACTIVE = (QUEUED, RUNNING)
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
