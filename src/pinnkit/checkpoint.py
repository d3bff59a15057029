"""Checkpoints that survive a kill: one self-checking file per checkpoint, written atomically.

A checkpoint file (``checkpoint-000200.eqx``) is a zip archive (stored, not compressed) of two members:

- ``meta.json``: the format version, the step, the history so far, the run configuration, optional PRNG key data
  and free-form extras (written with :mod:`pinnkit.jsonio`, so NaN and infinities survive);
- ``state.eqx``: the parameters and the optimizer state (reweighting weights inside), serialised with
  ``eqx.tree_serialise_leaves``.

The archive's comment (its last 64 bytes) is the SHA-256 of every byte before it, so a truncated or corrupted file
(any byte) is recognised as such instead of loading garbage; the file stays an ordinary zip archive. Writes go to
a temporary file in the same folder, are flushed to disk, then renamed over the final name: a kill at any moment
leaves either the previous checkpoints alone or the new one complete. Old checkpoints are pruned only after the
new one is in place.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from pinnkit import jsonio
from pinnkit.atomic import atomic_open
from pinnkit.history import History
from pinnkit.validation import non_negative_int, positive_int

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Checkpointer",
    "CheckpointInfo",
    "check_folder",
    "checkpoint_path",
    "list_checkpoints",
    "latest_checkpoint",
    "load_checkpoint",
    "read_checkpoint_info",
    "save_checkpoint",
]

FORMAT_VERSION = 2
_META = "meta.json"
_STATE = "state.eqx"
_DIGEST = 64  # hex SHA-256 in the archive comment
_NAME = re.compile(r"^checkpoint-(\d+)\.eqx$")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: missing, truncated, corrupted, or from another set-up. Names the file."""


class CheckpointInfo(NamedTuple):
    """What a checkpoint says about itself, read without the leaves.

    Attributes:
        path: the file.
        step: the number of training steps done.
        config: the run configuration (``RunConfig.to_dict()``), or None.
        history: the history up to ``step``.
        key_data: PRNG key data (a nested list of integers), or None.
        extras: free-form JSON-ready metadata (e.g. CLI options).
    """

    path: Path
    step: int
    config: dict[str, Any] | None
    history: History
    key_data: Any
    extras: dict[str, Any]


class Checkpoint(NamedTuple):
    """A loaded checkpoint: :class:`CheckpointInfo`'s fields plus the model and the optimizer state."""

    path: Path
    step: int
    config: dict[str, Any] | None
    history: History
    key_data: Any
    extras: dict[str, Any]
    model: Any
    opt_state: Any


def checkpoint_path(directory: str | os.PathLike, step: int) -> Path:
    """The file name of the checkpoint at ``step`` inside ``directory``.

    Example:
        >>> checkpoint_path("runs/a", 200).name
        'checkpoint-000200.eqx'
    """
    step = non_negative_int("step", step)
    return Path(directory) / f"checkpoint-{step:06d}.eqx"


def list_checkpoints(directory: str | os.PathLike) -> list[Path]:
    """The checkpoint files in ``directory``, oldest first (temporary files of an interrupted write ignored).

    Example:
        >>> import tempfile
        >>> list_checkpoints(tempfile.mkdtemp())
        []
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(f"checkpoint folder {str(directory)!r} does not exist or is not a folder")
    found = []
    for entry in directory.iterdir():
        match = _NAME.match(entry.name)
        if match and entry.is_file():
            found.append((int(match.group(1)), entry))
    return [path for _, path in sorted(found)]


def latest_checkpoint(directory: str | os.PathLike) -> Path | None:
    """The checkpoint of the highest step in ``directory``, or None when there is none.

    Example:
        >>> import tempfile
        >>> latest_checkpoint(tempfile.mkdtemp()) is None
        True
    """
    found = list_checkpoints(directory)
    return found[-1] if found else None


def save_checkpoint(
    directory: str | os.PathLike,
    *,
    step: int,
    model,
    opt_state,
    history: History | None = None,
    config: Any = None,
    key_data=None,
    extras: Mapping[str, Any] | None = None,
    keep: int | None = 3,
) -> Path:
    """Write a checkpoint atomically and prune the older ones.

    Args:
        directory: folder of the checkpoints (created if missing).
        step: training steps done; names the file.
        model: the model (or any pytree of parameters).
        opt_state: the optimizer state.
        history: the history up to ``step``.
        config: the run configuration: a ``RunConfig``, a dict, or None.
        key_data: PRNG state: a typed key, raw key data, or None.
        extras: further JSON-ready metadata.
        keep: how many checkpoints to keep (None: all). The new one always counts among them.

    Returns:
        The path of the new checkpoint.

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> folder = tempfile.mkdtemp()
        >>> path = save_checkpoint(folder, step=5, model={"w": jnp.ones(2)}, opt_state=())
        >>> path.name, latest_checkpoint(folder) == path
        ('checkpoint-000005.eqx', True)
    """
    keep = positive_int("keep", keep, none=True)
    target = checkpoint_path(directory, step)
    header = {
        "format": FORMAT_VERSION,
        "step": int(step),
        "config": _config_dict(config),
        "history": _history_to_json(history if history is not None else History()),
        "key_data": _key_data(key_data),
        "extras": dict(extras or {}),
    }
    try:
        meta = jsonio.dumps(header).encode()
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint metadata is not JSON-ready: {error}") from None
    leaves = io.BytesIO()
    eqx.tree_serialise_leaves(leaves, (model, opt_state))
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target.parent)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.comment = b"0" * _DIGEST  # replaced by the digest of everything before it
        archive.writestr(_META, meta)
        archive.writestr(_STATE, leaves.getvalue())
    body = buffer.getvalue()[:-_DIGEST]
    written = False
    try:
        with atomic_open(target, "wb") as stream:
            stream.write(body + hashlib.sha256(body).hexdigest().encode())
        written = True
    finally:
        # Also when an interrupt lands between the rename that makes the new checkpoint visible and this line:
        # otherwise keep + 1 checkpoints stay behind.
        if keep is not None and (written or target.is_file()):
            for old in list_checkpoints(target.parent)[:-keep]:
                if old != target:
                    old.unlink(missing_ok=True)
    return target


def read_checkpoint_info(path: str | os.PathLike) -> CheckpointInfo:
    """Verify a checkpoint and read its metadata (a folder: its latest checkpoint).

    Raises:
        CheckpointError: (a ValueError) naming the file, when it is missing, truncated, corrupted or not a
            pinnkit checkpoint.

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> folder = tempfile.mkdtemp()
        >>> _ = save_checkpoint(folder, step=3, model={"w": jnp.ones(2)}, opt_state=(), config={"seed": 1})
        >>> info = read_checkpoint_info(folder)
        >>> info.step, info.config
        (3, {'seed': 1})
    """
    info, _ = _read(path)
    return info


def load_checkpoint(
    path: str | os.PathLike,
    like_model,
    like_opt_state,
    *,
    expected_config: Any = None,
) -> Checkpoint:
    """Load a checkpoint into the structure of ``like_model`` and ``like_opt_state``.

    Args:
        path: a checkpoint file, or a folder (its latest checkpoint is loaded).
        like_model: a model of the same structure (e.g. freshly built from the saved configuration).
        like_opt_state: an optimizer state of the same structure (``optimizer.init(params)``).
        expected_config: when given (``RunConfig`` or dict), the saved configuration must equal it.

    Returns:
        A :class:`Checkpoint`.

    Raises:
        CheckpointError: (a ValueError) naming the file, when it is missing, truncated, corrupted, saved from
            another configuration, or holds leaves whose shapes or dtypes differ from the ``like_*`` trees.

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> folder = tempfile.mkdtemp()
        >>> _ = save_checkpoint(folder, step=7, model={"w": jnp.arange(3.0)}, opt_state=())
        >>> load_checkpoint(folder, {"w": jnp.zeros(3)}, ()).model["w"].tolist()
        [0.0, 1.0, 2.0]
    """
    info, leaves = _read(path)
    if expected_config is not None:
        expected = _config_dict(expected_config)
        if info.config != expected:
            raise CheckpointError(f"checkpoint {info.path} was saved from another configuration "
                                  f"({_first_difference(info.config, expected)})")
    checked = _shape_checker(info.path)
    stream = io.BytesIO(leaves)
    try:
        model, opt_state = eqx.tree_deserialise_leaves(stream, (like_model, like_opt_state), filter_spec=checked)
    except CheckpointError:
        raise
    except Exception as error:  # numpy's loader raises several kinds on a foreign payload
        raise CheckpointError(f"checkpoint {info.path} does not match the model and optimizer: {error}") from None
    if stream.tell() != len(leaves):
        raise CheckpointError(f"checkpoint {info.path} holds more arrays than the model and optimizer state")
    return Checkpoint(*info, model=model, opt_state=opt_state)


# ----- reading ----------------------------------------------------------------------------------------------
def _resolve(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is None:
            raise CheckpointError(f"no checkpoint (checkpoint-*.eqx) in folder {str(path)!r}")
        return latest
    if not path.is_file():
        raise CheckpointError(f"checkpoint {str(path)!r} does not exist")
    return path


def _read(path: str | os.PathLike) -> tuple[CheckpointInfo, bytes]:
    path = _resolve(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise CheckpointError(f"cannot read checkpoint {path}: {error.strerror or error}") from None
    if len(data) <= _DIGEST or hashlib.sha256(data[:-_DIGEST]).hexdigest().encode() != data[-_DIGEST:]:
        raise CheckpointError(f"checkpoint {path} is corrupted or truncated (content hash mismatch)")
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = archive.namelist()
            if names != [_META, _STATE]:
                raise CheckpointError(f"{path} is not a pinnkit checkpoint (it holds {names[:4]})")
            meta = archive.read(_META)  # zipfile also checks each member's CRC-32
            leaves = archive.read(_STATE)
    except CheckpointError:
        raise
    except zipfile.BadZipFile as error:
        raise CheckpointError(f"checkpoint {path} is not a pinnkit checkpoint ({error})") from None
    try:
        header = jsonio.loads(meta)
        if header.get("format") != FORMAT_VERSION:
            raise ValueError(f"unsupported format {header.get('format')!r}")
        info = CheckpointInfo(
            path=path, step=int(header["step"]), config=header["config"],
            history=_history_from_json(header["history"]), key_data=header["key_data"],
            extras=dict(header["extras"]),
        )
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise CheckpointError(f"checkpoint {path} has an unreadable header: {error}") from None
    named = _NAME.match(path.name)
    if named and int(named.group(1)) != info.step:
        # Renamed or copied in from another run: its name would put it at the wrong place among its neighbours.
        raise CheckpointError(f"checkpoint {path} holds step {info.step}, not the step {int(named.group(1))} its "
                              "name says (renamed, or copied from another run?)")
    return info, leaves


def check_folder(info: CheckpointInfo, *, expected: Mapping[str, Mapping[str, Any] | None] | None = None) -> None:
    """Refuse a checkpoint that is not of its folder's run (e.g. one copied in from another run).

    Its configuration must equal that of every other readable checkpoint in its folder and every configuration in
    ``expected`` (keyed by what holds it, e.g. ``{"result.json": summary["config"]}``; None values are skipped).
    The other checkpoints' headers alone are read (not their leaves); an unreadable one is skipped: it is not the
    one to be loaded.

    Raises:
        CheckpointError: naming the file, what it disagrees with and the first differing setting.

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> folder = tempfile.mkdtemp()
        >>> _ = save_checkpoint(folder, step=1, model={"w": jnp.ones(1)}, opt_state=(), config={"seed": 1})
        >>> _ = save_checkpoint(folder, step=2, model={"w": jnp.ones(1)}, opt_state=(), config={"seed": 2})
        >>> try:
        ...     check_folder(read_checkpoint_info(folder))
        ... except CheckpointError as error:
        ...     print(str(error).split(" was ")[1])
        saved from another configuration than checkpoint-000001.eqx beside it (seed: 2 here, 1 there)
    """
    others: list[tuple[str, Any]] = []
    for path in list_checkpoints(info.path.parent):
        if path.resolve() != info.path.resolve():
            config = _header_config(path)
            if config is not _UNREADABLE:
                others.append((f"{path.name} beside it", config))
    others += [(name, _config_dict(config)) for name, config in (expected or {}).items() if config is not None]
    for name, config in others:
        if config != info.config:
            raise CheckpointError(f"checkpoint {info.path} was saved from another configuration than {name} "
                                  f"({_difference(info.config, config)})")


_UNREADABLE = object()


def _header_config(path: Path) -> Any:
    """The configuration in a checkpoint's header (zipfile checks the member's CRC), or ``_UNREADABLE``."""
    try:
        with zipfile.ZipFile(path) as archive:
            header = jsonio.loads(archive.read(_META))
        return header["config"]
    except (OSError, zipfile.BadZipFile, KeyError, ValueError, TypeError):
        return _UNREADABLE


def _difference(here: Mapping[str, Any] | None, there: Mapping[str, Any] | None) -> str:
    if here is None or there is None:
        return "one of them stores no configuration"
    for name in sorted(set(here) | set(there)):
        if here.get(name) != there.get(name):
            return f"{name}: {here.get(name)!r} here, {there.get(name)!r} there"
    return "configurations differ"


def _shape_checker(path: Path):
    def load(stream, like):
        value = eqx.default_deserialise_filter_spec(stream, like)
        if isinstance(like, jax.Array | jax.ShapeDtypeStruct | np.ndarray):
            if value.shape != like.shape or value.dtype != like.dtype:
                raise CheckpointError(
                    f"checkpoint {path} does not match the model and optimizer: a leaf saved as "
                    f"{value.dtype}{list(value.shape)} where {like.dtype}{list(like.shape)} is expected"
                )
        return value

    return load


# ----- writing ----------------------------------------------------------------------------------------------
def _remove_stale_temporaries(directory: Path) -> None:
    # Left behind by a writer killed mid-write; never a complete checkpoint.
    for entry in directory.glob(".checkpoint-*.eqx.*.tmp"):
        entry.unlink(missing_ok=True)


# ----- metadata ---------------------------------------------------------------------------------------------
def _config_dict(config: Any) -> dict[str, Any] | None:
    if config is None:
        return None
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    elif dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(f"config must be a RunConfig, a dataclass or a mapping, got {type(config).__name__}")
    # A JSON round trip makes the stored form and the compared form identical (tuples become lists, ...).
    try:
        return jsonio.loads(jsonio.dumps(dict(config)))
    except (TypeError, ValueError) as error:
        raise ValueError(f"config is not JSON-ready: {error}") from None


def _key_data(key) -> Any:
    if key is None:
        return None
    if isinstance(key, jax.Array) and jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key).tolist()


def _history_to_json(history: History) -> dict[str, Any]:
    # jsonio writes NaN (a value missing from a row) as null and infinities as "inf"/"-inf"; floats round-trip.
    columns = history.columns
    values = [history[name] for name in columns]
    rows = [[float(column[index]) for column in values] for index in range(len(history))]
    return {"columns": columns, "rows": rows}


def _history_from_json(data: Mapping[str, Any]) -> History:
    columns = list(data["columns"])
    history = History()
    for row in data["rows"]:
        if len(row) != len(columns):
            raise ValueError("history row length differs from its columns")
        history.append({name: jsonio.decode_float(value) for name, value in zip(columns, row, strict=True)})
    return history


def _first_difference(saved: Mapping[str, Any] | None, expected: Mapping[str, Any]) -> str:
    if saved is None:
        return "it stores no configuration"
    for name in sorted(set(saved) | set(expected)):
        if saved.get(name) != expected.get(name):
            return f"{name}: saved {saved.get(name)!r}, expected {expected.get(name)!r}"
    return "configurations differ"


class Checkpointer:
    """A ``checkpoint`` hook for :func:`pinnkit.fit` / :func:`pinnkit.experiment.run` that saves every N steps.

    Training calls it after each history row; it saves at the first row at or past each multiple of ``every``,
    so checkpoints always fall on history rows and a resumed run takes the same chunks as an uninterrupted one.

    Args:
        directory: folder of the checkpoints.
        every: save at least every this many steps (on the next history row).
        config: the run configuration stored in each checkpoint.
        keep: how many checkpoints to keep (None: all).
        key_data: PRNG state stored in each checkpoint.
        extras: further JSON-ready metadata stored in each checkpoint.
        on_save: called as ``on_save(path, history)`` after each save (e.g. to write history.csv beside it).

    Example:
        >>> import tempfile, jax.numpy as jnp
        >>> from pinnkit.history import History
        >>> hook = Checkpointer(tempfile.mkdtemp(), every=10)
        >>> for step in (5, 10, 15, 20, 25):
        ...     _ = hook(step, {"w": jnp.ones(2)}, (), History())
        >>> [path.name for path in list_checkpoints(hook.directory)]
        ['checkpoint-000010.eqx', 'checkpoint-000020.eqx']
    """

    def __init__(
        self,
        directory: str | os.PathLike,
        *,
        every: int,
        config: Any = None,
        keep: int | None = 3,
        key_data=None,
        extras: Mapping[str, Any] | None = None,
        on_save=None,
    ):
        every = positive_int("every", every)
        self.directory = Path(directory)
        self.every = every
        self.config = _config_dict(config)
        self.keep = keep
        self.key_data = key_data
        self.extras = dict(extras or {})
        self.on_save = on_save
        self.last_step: int | None = None
        self.last_path: Path | None = None

    def __call__(self, step: int, model, opt_state, history: History) -> Path | None:
        """Save when ``step`` reached a new multiple of ``every``; returns the new path, or None."""
        previous = self.last_step if self.last_step is not None else _start_of(history, step)
        if step // self.every <= previous // self.every:
            return None
        return self.save(step, model, opt_state, history)

    def save(self, step: int, model, opt_state, history: History) -> Path:
        """Save now, whatever the schedule."""
        self.last_path = save_checkpoint(
            self.directory, step=step, model=model, opt_state=opt_state, history=history, config=self.config,
            key_data=self.key_data, extras=self.extras, keep=self.keep,
        )
        self.last_step = step
        if self.on_save is not None:
            self.on_save(self.last_path, history)
        return self.last_path


def _start_of(history: History, step: int) -> int:
    # The step of the row before this one: where the current run (fresh or resumed) stood before this chunk.
    if len(history) >= 2:
        return int(history["step"][-2])
    return 0
