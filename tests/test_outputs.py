"""Output folders: refused targets touch nothing, overwrite only pinnkit's own files, atomically; locks, races,
permissions and the clean-up of abandoned claims."""

from __future__ import annotations

import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pinnkit import outputs
from pinnkit.atomic import atomic_write_text, current_umask
from pinnkit.history import History
from pinnkit.outputs import MARKER, claim_existing, claim_output, filesystem, read_marker


def snapshot(root: Path) -> list[tuple[str, bytes | None, int]]:
    """Every entry under root: relative path, content (None for a folder) and mode."""
    found = []
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = Path(folder) / name
            content = None if path.is_dir() else path.read_bytes()
            found.append((str(path.relative_to(root)), content, path.lstat().st_mode))
    return sorted(found)


def make_output(path: Path, kind: str = "compare", files: dict[str, str] | None = None) -> Path:
    """A committed pinnkit output folder holding ``files``."""
    with claim_output(path, kind=kind) as claim:
        for name, text in (files or {}).items():
            (claim.folder / name).parent.mkdir(parents=True, exist_ok=True)
            (claim.folder / name).write_text(text)
        claim.commit()
    return path


@pytest.fixture
def umask():
    previous = os.umask(0o022)
    try:
        yield lambda mask: os.umask(mask)
    finally:
        os.umask(previous)


# ----- refused targets: nothing touched -----


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """cwd = tmp/home/project/work, a pinnkit compare output with the user's files beside it; HOME = tmp/home."""
    home = tmp_path / "home"
    work = home / "project" / "work"
    make_output(work, files={"results.csv": "name\nold\n", "summary.json": "{}"})
    (home / "project" / "thesis.tex").write_text("years of work")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(home))
    return tmp_path


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize(
    "target, reason",
    [
        (".", "is the current folder"),
        ("{work}", "is the current folder"),
        ("./", "is the current folder"),
        ("sub/..", "is the current folder"),
        ("..", "contains the current folder"),
        ("{project}", "contains the current folder"),
        ("{home}", "contains the current folder"),
        ("{tmp}", "contains the current folder"),
        ("", "empty path"),
        ("/", "root of the file system"),
    ],
)
def test_current_folder_its_parents_root_and_empty_are_refused(workspace, overwrite, target, reason):
    work = workspace / "home" / "project" / "work"
    target = target.format(work=work, project=work.parent, home=workspace / "home", tmp=workspace)
    before = snapshot(workspace)
    with pytest.raises(ValueError, match=reason) as error:
        claim_output(target, kind="compare", overwrite=overwrite)
    assert target in str(error.value) or target == ""
    assert snapshot(workspace) == before


def test_home_and_its_parents_are_refused(tmp_path, monkeypatch):
    home = tmp_path / "home" / "me"
    home.mkdir(parents=True)
    (home / ".bashrc").write_text("")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(tmp_path)
    before = snapshot(tmp_path)
    for target in (home, home.parent, "~"):
        expanded = os.path.expanduser(target)
        with pytest.raises(ValueError, match="home folder"):
            claim_output(expanded, kind="train", overwrite=True)
    assert snapshot(tmp_path) == before


def test_overlong_name_is_refused_before_touching_the_disk(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "mkdir", lambda *args, **kwargs: calls.append(args))
    long_name = "x" * 300
    for target in (tmp_path / "new-parent" / long_name, tmp_path / long_name / "run", tmp_path / ("é" * 150)):
        with pytest.raises(ValueError, match="bytes long; the file system allows 255") as error:
            claim_output(target, kind="train")
        assert len(str(error.value)) < 300  # the name is shortened in the message
    assert calls == [] and list(tmp_path.iterdir()) == []


def test_a_file_or_a_file_parent_is_refused(tmp_path):
    (tmp_path / "file").write_text("mine")
    for target, message in ((tmp_path / "file", "is not a folder"), (tmp_path / "file" / "run", "is not a folder")):
        with pytest.raises(ValueError, match=message):
            claim_output(target, kind="train", overwrite=True)
    (tmp_path / "link").symlink_to(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        claim_output(tmp_path / "link", kind="train")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["file", "link"]
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_parent_that_is_not_writable_is_refused(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(ValueError, match="not writable"):
        claim_output(locked / "a" / "run", kind="train")
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_a_parent_where_nothing_can_be_created_is_refused():
    with pytest.raises(ValueError, match="cannot create output folder '/proc/pinnkit-test/run'"):
        claim_output("/proc/pinnkit-test/run", kind="train")
    assert not os.path.exists("/proc/pinnkit-test")


# ----- existing folders: only pinnkit's own, only with overwrite -----


def test_existing_folder_needs_overwrite(tmp_path):
    target = make_output(tmp_path / "run", kind="train", files={"history.csv": "step\n"})
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match="exists; pass overwrite"):
        claim_output(target, kind="train")
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda folder: (folder / "notes.txt").write_text("mine"), "'notes.txt', which pinnkit does not write"),
        (lambda folder: (folder / "figures" / "draft.pdf").write_bytes(b"%PDF"), "draft.pdf"),
        (lambda folder: (folder / "histories" / "sub").mkdir(), "sub"),
        (lambda folder: (folder / "results.csv").mkdir(), "results.csv"),  # a folder where a file belongs
        (lambda folder: (folder / MARKER).unlink(), "is not a pinnkit output"),
        (lambda folder: (folder / MARKER).write_text("{not json"), "unreadable"),
    ],
)
def test_foreign_entries_and_a_missing_marker_are_refused(tmp_path, setup, message):
    target = make_output(tmp_path / "cmp", files={"results.csv": "a\n", "figures/a.png": "png", "histories/x.csv": ""})
    if message == "results.csv":
        (target / "results.csv").unlink()
    setup(target)
    before = snapshot(tmp_path)
    with pytest.raises(ValueError, match=message):
        claim_output(target, kind="compare", overwrite=True)
    assert snapshot(tmp_path) == before  # nothing removed, no staging folder left


def test_a_plain_folder_and_another_kind_are_refused(tmp_path):
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "history.csv").write_text("step\n")
    with pytest.raises(ValueError, match="is not a pinnkit output"):
        claim_output(plain, kind="train", overwrite=True)
    trained = make_output(tmp_path / "trained", kind="train", files={"result.json": "{}"})
    with pytest.raises(ValueError, match="holds a pinnkit 'train' output, not a 'compare' one"):
        claim_output(trained, kind="compare", overwrite=True)
    assert (plain / "history.csv").exists() and (trained / "result.json").exists()


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_overwrite_replaces_atomically(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(filesystem, "exchange", lambda first, second: False)
    target = make_output(tmp_path / "cmp", files={"results.csv": "old\n", "figures/old.png": "old"})
    (tmp_path / "neighbour.txt").write_text("keep")
    old = snapshot(target)
    with claim_output(target, kind="compare", overwrite=True) as claim:
        assert claim.mode == "overwrite" and claim.folder.parent == target.parent
        assert not claim.folder.is_relative_to(target)
        (claim.folder / "results.csv").write_text("new\n")
        (claim.folder / "histories").mkdir()
        (claim.folder / "histories" / "a.csv").write_text("step\n")
        assert snapshot(target) == old  # the old output is whole until the commit
        claim.commit()
    assert (target / "results.csv").read_text() == "new\n" and not (target / "figures").exists()
    assert read_marker(target)["state"] == "complete" and read_marker(target)["pid"] == os.getpid()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cmp", "neighbour.txt"]
    assert claim.leftover is None and claim.state == "complete"


def test_a_failure_before_commit_leaves_the_old_folder_intact(tmp_path):
    target = make_output(tmp_path / "cmp", files={"results.csv": "old\n", "summary.json": "{}"})
    before = snapshot(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        with claim_output(target, kind="compare", overwrite=True) as claim:
            (claim.folder / "results.csv").write_text("half")
            raise RuntimeError("boom")
    assert snapshot(tmp_path) == before
    assert claim.state == "removed"
    # Interrupted for real: a KeyboardInterrupt, and a claim left without commit().
    with pytest.raises(KeyboardInterrupt):
        with claim_output(target, kind="compare", overwrite=True):
            raise KeyboardInterrupt
    with pytest.raises(RuntimeError, match="without commit"):
        with claim_output(target, kind="compare", overwrite=True) as claim:
            (claim.folder / "results.csv").write_text("never committed")
    assert snapshot(tmp_path) == before


def test_a_file_appearing_in_the_old_folder_stops_the_commit(tmp_path):
    target = make_output(tmp_path / "cmp", files={"results.csv": "old\n"})
    claim = claim_output(target, kind="compare", overwrite=True)
    (target / "my-notes.txt").write_text("written meanwhile")
    with pytest.raises(ValueError, match="my-notes.txt"):
        claim.commit()
    claim.abandon()
    assert (target / "my-notes.txt").exists() and (target / "results.csv").read_text() == "old\n"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cmp"]


def test_overwrite_through_a_symbolic_link_stages_in_the_real_parent(tmp_path):
    real = make_output(tmp_path / "real" / "out", kind="train", files={"result.json": "1"})
    (tmp_path / "link").symlink_to(real)
    with claim_output(tmp_path / "link", kind="train", overwrite=True) as claim:
        assert claim.target == real and claim.folder.parent == real.parent
        (claim.folder / "result.json").write_text("2")
        claim.commit()
    assert (tmp_path / "link").is_symlink() and (tmp_path / "link" / "result.json").read_text() == "2"


# ----- locks and races between processes -----

WORKER = textwrap.dedent("""
    import os, sys, time
    from pinnkit.outputs import claim_output
    mode, root = sys.argv[1], sys.argv[2]
    if mode == "hold":
        claim = claim_output(root, kind="train")
        print("claimed", flush=True)
        time.sleep(60)
    else:
        count, go = int(sys.argv[3]), sys.argv[4]
        print("ready", flush=True)
        while not os.path.exists(go):
            pass
        for index in range(count):
            try:
                claim_output(os.path.join(root, f"t{index}", "out"), kind="train").commit()
                print(index, "won", flush=True)
            except ValueError as error:
                print(index, "lost", "exists" in str(error), flush=True)
""")


def _worker(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", WORKER, *args], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "JAX_PLATFORMS": "cpu"})


def test_two_processes_racing_for_one_folder_exactly_one_wins(tmp_path):
    count = 200
    go = tmp_path / "go"
    workers = [_worker("race", str(tmp_path / "race"), str(count), str(go)) for _ in range(2)]
    for worker in workers:
        assert worker.stdout.readline().strip() == "ready"
    go.write_text("")
    outcomes = [worker.communicate(timeout=120)[0].split("\n") for worker in workers]
    results: dict[int, list[str]] = {}
    for lines, worker in zip(outcomes, workers, strict=True):
        assert worker.returncode == 0
        for line in filter(None, lines):
            index, result, *rest = line.split()
            results.setdefault(int(index), []).append(result)
            if result == "lost":
                assert rest == ["True"]  # the "exists" error
    assert len(results) == count
    assert all(sorted(both) == ["lost", "won"] for both in results.values())
    pids = {read_marker(tmp_path / "race" / f"t{index}" / "out")["pid"] for index in range(count)}
    assert pids <= {worker.pid for worker in workers}
    assert all(os.listdir(tmp_path / "race" / f"t{index}" / "out") == [MARKER] for index in range(count))


def test_a_held_lock_refuses_a_second_overwrite(tmp_path):
    target = tmp_path / "run"
    holder = _worker("hold", str(target))
    try:
        assert holder.stdout.readline().strip() == "claimed"
        before = snapshot(tmp_path)
        for claim in (lambda: claim_output(target, kind="train", overwrite=True),
                      lambda: claim_existing(target, kind="train")):
            with pytest.raises(ValueError, match=f"in use by another pinnkit run \\(pid {holder.pid}\\)"):
                claim()
        assert snapshot(tmp_path) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    # Killed: the lock went with the process; the folder says "running" but may now be replaced.
    assert read_marker(target)["state"] == "running"
    with claim_output(target, kind="train", overwrite=True) as claim:
        claim.commit()
    # In one process too: a second claim while the first holds the lock.
    first = claim_output(target, kind="train", overwrite=True)
    with pytest.raises(ValueError, match=f"in use by another pinnkit run \\(pid {os.getpid()}\\)"):
        claim_output(target, kind="train", overwrite=True)
    first.abandon()
    claim_output(target, kind="train", overwrite=True).abandon()  # released


# ----- permissions -----


@pytest.mark.parametrize("mask, file_mode, folder_mode", [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_permissions_follow_the_umask(tmp_path, umask, mask, file_mode, folder_mode):
    umask(mask)
    assert current_umask() == mask

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.stat().st_mode)

    target = tmp_path / "parent" / "run"
    with claim_output(target, kind="train") as claim:
        atomic_write_text(claim.folder / "result.json", "{}")
        History([{"step": 1}]).to_csv(claim.folder / "history.csv")
        claim.commit()
    assert mode(tmp_path / "parent") == folder_mode and mode(target) == folder_mode
    assert {name: mode(target / name) for name in os.listdir(target)} == dict.fromkeys(
        [MARKER, "result.json", "history.csv"], file_mode)
    with claim_output(target, kind="train", overwrite=True) as claim:
        assert mode(claim.folder) == folder_mode and mode(claim.folder / MARKER) == file_mode
        atomic_write_text(claim.folder / "result.json", "{}")
        claim.commit()
    assert mode(target) == folder_mode and mode(target / "result.json") == file_mode


# ----- abandoning fresh claims, resuming -----


def test_abandon_removes_an_empty_claim_and_the_parents_it_created(tmp_path):
    (tmp_path / "runs").mkdir()
    claim = claim_output(tmp_path / "runs" / "a" / "b" / "run", kind="compare")
    (claim.folder / ".results.csv.x1.tmp").write_text("partial")
    (claim.folder / "histories").mkdir()
    (claim.folder / "histories" / ".a.csv.x2.tmp").write_text("partial")
    claim.abandon()
    assert claim.state == "removed" and list((tmp_path / "runs").iterdir()) == []  # runs/ existed: kept
    # A parent that gained other content meanwhile stays.
    claim = claim_output(tmp_path / "runs" / "a" / "run", kind="train")
    (tmp_path / "runs" / "a" / "other.txt").write_text("")
    claim.abandon()
    assert sorted(os.listdir(tmp_path / "runs" / "a")) == ["other.txt"]


def test_abandon_keeps_a_claim_holding_a_checkpoint(tmp_path):
    target = tmp_path / "new" / "run"
    with pytest.raises(KeyboardInterrupt):
        with claim_output(target, kind="train") as claim:
            (claim.folder / "checkpoint-000010.eqx").write_bytes(b"state")
            raise KeyboardInterrupt
    assert claim.state == "interrupted" and read_marker(target)["state"] == "interrupted"
    assert sorted(os.listdir(target)) == [MARKER, "checkpoint-000010.eqx"]
    with claim_existing(target, kind="train") as resumed:
        assert resumed.folder == target and read_marker(target)["state"] == "running"
        (target / "history.csv").write_text("step\n")
        resumed.commit()
    assert read_marker(target)["state"] == "complete"
    with pytest.raises(ValueError, match="not a 'compare' one"):
        claim_existing(target, kind="compare")
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match="is not a pinnkit output"):
        claim_existing(tmp_path / "plain", kind="train")


def test_marker_records_the_run(tmp_path):
    target = tmp_path / "run"
    claim = claim_output(target, kind="train")
    marker = json.loads((target / MARKER).read_text())
    assert marker["kind"] == "train" and marker["state"] == "running" and marker["pid"] == os.getpid()
    assert "pinnkit_version" in marker and "created" in marker
    claim.commit()
    assert read_marker(target)["state"] == "complete"
    claim.commit()  # again: nothing happens
    claim.abandon()  # after commit: nothing happens
    assert read_marker(target)["state"] == "complete" and target.is_dir()
    assert time.strptime(marker["created"][:19], "%Y-%m-%dT%H:%M:%S")


# ----- an old output made read-only -----


def make_read_only(target: Path) -> None:
    """``chmod -R a-w`` of an output: its files and its folders, the top one included."""
    for folder, _, files in os.walk(target, topdown=False):
        for name in files:
            os.chmod(Path(folder) / name, 0o444)
        os.chmod(folder, 0o555)


def rmtree_as_a_user(real):
    """``shutil.rmtree`` as it fails for anyone but root: a folder without write permission keeps its entries
    (root is not stopped by permissions, so the tests, which run as root, emulate it)."""

    def rmtree(path, ignore_errors=False, onerror=None):
        for folder, names, _ in os.walk(path):
            if not os.stat(folder).st_mode & stat.S_IWUSR:
                if ignore_errors:
                    return
                raise PermissionError(13, "Permission denied", folder)
            names[:] = [name for name in names if not os.path.islink(os.path.join(folder, name))]
        real(path, ignore_errors=ignore_errors, onerror=onerror)

    return rmtree


def overwrite_read_only(tmp_path: Path) -> outputs.OutputClaim:
    target = make_output(tmp_path / "cmp", files={"results.csv": "old\n", "histories/a.csv": "step\n"})
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "keep.txt").write_text("keep")
    os.chmod(tmp_path / "elsewhere", 0o555)
    os.symlink(tmp_path / "elsewhere", target / "histories" / "b.csv")  # never followed, never changed
    make_read_only(target)
    with claim_output(target, kind="compare", overwrite=True) as claim:
        (claim.folder / "results.csv").write_text("new\n")
        claim.commit()
    assert (target / "results.csv").read_text() == "new\n"
    assert (tmp_path / "elsewhere" / "keep.txt").read_text() == "keep"
    assert stat.S_IMODE(os.stat(tmp_path / "elsewhere").st_mode) == 0o555
    return claim


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "two-renames"])
def test_overwrite_removes_an_old_output_made_read_only(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(filesystem, "exchange", lambda first, second: False)
    if os.geteuid() == 0:
        monkeypatch.setattr(shutil, "rmtree", rmtree_as_a_user(shutil.rmtree))
    claim = overwrite_read_only(tmp_path)
    assert claim.leftover is None
    assert sorted(path.name for path in tmp_path.iterdir()) == ["cmp", "elsewhere"]  # no hidden old folder


def test_an_old_output_that_cannot_be_removed_is_reported(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(shutil, "rmtree", lambda path, ignore_errors=False, onerror=None: None)
    claim = overwrite_read_only(tmp_path)
    assert claim.leftover is not None and claim.leftover.exists()
    warnings = [record.getMessage() for record in caplog.records if record.name == "pinnkit.outputs"]
    assert len(warnings) == 1 and str(claim.leftover) in warnings[0] and "\n" not in warnings[0], warnings


# ----- the states as StrEnums: the marker on disk is as before -----


def test_the_marker_holds_the_same_strings_and_old_markers_still_read(tmp_path):
    target = tmp_path / "run"
    with claim_output(target, kind="train") as claim:
        assert claim.mode == "fresh" and claim.mode is outputs.OutputMode.FRESH
        running = json.loads((target / MARKER).read_text())
        claim.commit()
    assert running["state"] == "running" and type(running["state"]) is str
    on_disk = json.loads((target / MARKER).read_text())
    assert (on_disk["kind"], on_disk["state"]) == ("train", "complete")
    assert claim.state == outputs.OutputState.COMPLETE == "complete"
    assert repr(claim).endswith("kind='train', mode='fresh', state='complete')")
    # A folder whose marker was written before the enums (plain JSON, state "interrupted") resumes and is replaced.
    old = tmp_path / "old"
    old.mkdir()
    (old / MARKER).write_text(json.dumps({"pinnkit_output": 1, "kind": "train", "pinnkit_version": "0.1.0",
                                          "created": "2024-01-01T00:00:00+0000", "updated": "2024-01-01T00:00:00+0000",
                                          "pid": 1, "host": "elsewhere", "state": "interrupted"}))
    (old / "checkpoint-000010.eqx").write_bytes(b"...")
    with pytest.raises(outputs.UnfinishedOutputError) as refused:
        claim_output(old, kind="train", overwrite=True, protect=("checkpoint-*.eqx",))
    assert refused.value.state == "interrupted"
    with claim_existing(old, kind="train") as resumed:
        assert resumed.mode == "existing"
        resumed.commit()
    assert read_marker(old)["state"] == "complete"
    with claim_output(old, kind="train", overwrite=True, protect=("checkpoint-*.eqx",)) as replaced:
        assert replaced.mode == "overwrite"
        replaced.commit()
    assert sorted(os.listdir(old)) == [MARKER]
