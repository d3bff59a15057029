"""Output folders that pinnkit owns: claimed before writing, then committed or abandoned, never anyone else's.

A folder pinnkit writes holds a marker file, ``.pinnkit-output``: JSON with ``pinnkit_output`` (the marker
format, 1), ``kind`` ("train" or "compare"), ``pinnkit_version``, ``created`` and ``updated`` (local ISO 8601
times), the writer's ``pid`` and ``host``, and ``state`` ("running", "complete" or "interrupted"), padded with
spaces as it is rewritten in place. While a run writes into a folder it holds an exclusive ``flock`` on the
marker, so a second run can tell that the folder is in use; a run that was killed releases it with its process.

Rules (see :func:`claim_output`):

* pinnkit never claims as a new or replaced output the current folder, one of its ancestors, the root or the
  home folder (resuming in place with :func:`claim_existing` removes nothing but the temporaries of writes cut
  short, and may use any pinnkit output).
* A folder that exists is only replaced when asked (``overwrite``) and when it is a pinnkit output of the same
  kind that holds nothing but the files pinnkit writes there (:data:`KNOWN_ENTRIES`), that no other run holds
  locked, and (with ``protect``) that holds nothing an unfinished run needs (checkpoints, say).
* A replacement is written beside the old folder (in its real parent, never inside it) and swapped in by
  :meth:`OutputClaim.commit`: the new content is complete before the old is removed, and a failure before the
  commit leaves the old folder as it was. A staging folder that holds what an unfinished run needs (``protect``:
  checkpoints, say) when the claim is abandoned is kept under a visible name beside the target,
  ``<name>.interrupted`` (``-2``, ``-3``, ... if taken), so that the run can be continued.
* Folders are created with mode ``0o777 & ~umask``, files ``0o666 & ~umask``.

Modules: ``states`` (the kinds, modes and states, as ``StrEnum`` s), ``marker`` (the marker file and its lock),
``targets`` (the paths a claim may use), ``contents`` (what a folder may hold), ``acquire`` (making a claim),
``claim`` (:class:`OutputClaim`: committing or abandoning it), ``removal`` and ``filesystem`` (the file-system
steps), ``display`` (:func:`show_path`) and ``errors``.

Example:
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> with claim_output(os.path.join(root, "run"), kind="train") as claim:
    ...     _ = (claim.folder / "history.csv").write_text("step,loss\\n")
    ...     _ = claim.commit()
    >>> read_marker(os.path.join(root, "run"))["state"]
    'complete'
    >>> with claim_output(os.path.join(root, "run"), kind="train", overwrite=True) as claim:
    ...     claim.folder != claim.target  # the replacement is staged beside the old folder
    ...     _ = (claim.folder / "result.json").write_text("{}")
    ...     _ = claim.commit()
    True
    >>> sorted(os.listdir(os.path.join(root, "run")))
    ['.pinnkit-output', 'result.json']
"""

from __future__ import annotations

from pinnkit.outputs.acquire import claim_existing, claim_output
from pinnkit.outputs.claim import OutputClaim
from pinnkit.outputs.contents import KNOWN_ENTRIES
from pinnkit.outputs.display import PATH_LIMIT, show_path
from pinnkit.outputs.errors import OutputInUseError, UnfinishedOutputError
from pinnkit.outputs.marker import MARKER, read_marker
from pinnkit.outputs.states import OutputKind, OutputMode, OutputState

__all__ = [
    "KNOWN_ENTRIES",
    "MARKER",
    "PATH_LIMIT",
    "OutputClaim",
    "OutputInUseError",
    "OutputKind",
    "OutputMode",
    "OutputState",
    "UnfinishedOutputError",
    "claim_existing",
    "claim_output",
    "read_marker",
    "show_path",
]
