"""The names an output folder's claim is in: its mode (how it was claimed) and its state (how far it got).

Both are ``StrEnum`` s: each member *is* its string, so a marker written with them holds the same JSON as one
written with plain strings, and a state read back from an old marker compares equal to the member.

Example:
    >>> OutputState.COMPLETE == "complete", str(OutputMode.OVERWRITE)
    (True, 'overwrite')
    >>> import json; json.dumps({"state": OutputState.RUNNING})
    '{"state": "running"}'
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["OutputKind", "OutputMode", "OutputState"]


class OutputKind(StrEnum):
    """The kinds of output folder pinnkit writes itself (another kind needs its own ``known`` patterns)."""

    TRAIN = "train"
    COMPARE = "compare"


class OutputMode(StrEnum):
    """How a claim got its folder."""

    FRESH = "fresh"  # the folder was created
    OVERWRITE = "overwrite"  # a replacement is staged beside the old folder
    EXISTING = "existing"  # resumed in place


class OutputState(StrEnum):
    """Where a claim stands; the marker's ``state`` is one of the first three."""

    RUNNING = "running"
    COMPLETE = "complete"
    INTERRUPTED = "interrupted"
    REMOVED = "removed"  # the claim's folder is gone (it held nothing worth keeping): never in a marker
