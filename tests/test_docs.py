"""The documentation's numbers come from scripts: every generated block equals what its JSON renders, shows the
JSON's values, and names the commit they were measured at; results whose measured code changed since are flagged."""

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
HEX40 = re.compile(r"[0-9a-f]{40}")


def load_render():
    spec = importlib.util.spec_from_file_location("docs_render", ROOT / "docs" / "render.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def load_machine():
    spec = importlib.util.spec_from_file_location("bench_machine", ROOT / "benchmarks" / "_machine.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_benchmark(name: str):
    """benchmarks/<name>.py as a module (its ``from _machine import ...`` resolved)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return module


def git(root: Path, *args: str) -> str:
    # Identity given here: a test machine may have none configured.
    return subprocess.run(["git", "-C", str(root), "-c", "user.name=test", "-c", "user.email=test@example.com",
                           "-c", "commit.gpgsign=false", *args], capture_output=True, text=True, check=True).stdout


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """A fresh git repository in ``tmp_path`` (git cannot climb above it into another one)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    for variable in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE"):
        monkeypatch.delenv(variable, raising=False)
    git(tmp_path, "init", "-q")
    return tmp_path


def commit_all(root: Path, message: str) -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "log", "--format=%H", "-1").strip()


def block_text(name: str) -> str:
    """Block ``name`` as the documents hold it (not as it would render now)."""
    render = load_render()
    for document in render.DOCUMENTS:
        for match in render.BLOCK.finditer(document.read_text()):
            if match.group(2) == name:
                return match.group(3)
    raise AssertionError(f"no block {name!r} in the documents")


def test_generated_blocks_are_up_to_date(capsys):
    render = load_render()
    assert render.main(["--check"]) == 0, capsys.readouterr().err


def test_every_block_has_its_json_with_machine_and_versions():
    render = load_render()
    names = {name for document in render.DOCUMENTS for name in render.blocks(document.read_text())}
    for name in names:
        data = render.payload(name)
        assert data.get("machine"), f"{name}: the JSON says nothing of the machine"
        assert data.get("versions", {}).get("jax"), f"{name}: the JSON lists no package versions"


def test_every_results_file_is_rendered_by_a_block():
    # A results file no block renders holds numbers that the documentation does not show (or shows by hand).
    render = load_render()
    rendered = {name.partition("-")[0] for document in render.DOCUMENTS for name in render.blocks(document.read_text())}
    assert rendered == {path.stem for path in RESULTS.glob("*.json")}


def test_the_blocks_show_the_values_of_their_json():
    # Read from the documents as committed and formatted here, independently of the markdown functions.
    acceptance = json.loads((RESULTS / "acceptance.json").read_text())
    text = block_text("acceptance")
    assert f"rel. L2 **{acceptance['rel_l2']:.2e}**" in text
    assert ("met" if acceptance["rel_l2"] <= acceptance["threshold"] else "NOT met") + ")" in text
    assert " ".join(acceptance["args"][1:]) in text

    cache = json.loads((RESULTS / "compile_cache.json").read_text())
    text = block_text("compile_cache")
    ratio = cache["second"]["compile_time_s"] / cache["first"]["compile_time_s"]
    assert f"**{ratio:.2f}x**" in text
    for run in ("first", "second", "cache_off"):
        assert f"| {cache[run]['compile_time_s']:.2f} | {cache[run]['process_wall_s']:.1f} |" in text

    example = json.loads((RESULTS / "readme_example.json").read_text())
    text = block_text("readme_example")
    for line in example["output"].strip().splitlines():
        assert line in text

    accuracy = json.loads((RESULTS / "accuracy.json").read_text())
    rows = block_text("accuracy-headline").splitlines()
    for problem in accuracy["problems"]:
        row = next(row for row in rows if row.startswith(f"| {problem['problem']} |"))
        errors = [seed["rel_l2"] for seed in problem["seeds"]]
        assert ", ".join(f"{error:.2e}" for error in errors) in row
        met = sum(error <= problem["target"] for error in errors)
        assert f"(met by {met} of {len(errors)} seeds)" in row


def test_every_block_names_the_commit_of_its_json():
    render = load_render()
    for document in render.DOCUMENTS:
        for match in render.BLOCK.finditer(document.read_text()):
            name, body = match.group(2), match.group(3)
            commit = render.payload(name)["provenance"]["commit"]
            last = body.strip("\n").splitlines()[-1]
            assert f"commit `{commit[:7]}`" in last, f"{document.name} {name}: {last!r}"


@pytest.mark.parametrize("path", sorted(RESULTS.glob("*.json")), ids=lambda path: path.name)
def test_every_result_names_a_commit_of_this_repository(path):
    provenance = json.loads(path.read_text()).get("provenance")
    assert provenance, f"{path.name} has no provenance (run benchmarks/backfill_provenance.py or its benchmark)"
    assert HEX40.fullmatch(provenance["commit"] or ""), provenance
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("no git repository to look the commit up in")
    found = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-e", f"{provenance['commit']}^{{commit}}"],
                           capture_output=True).returncode == 0
    if not found:
        shallow = git(ROOT, "rev-parse", "--is-shallow-repository").strip() == "true"
        if shallow:
            pytest.skip(f"{provenance['commit'][:7]} is not in this shallow clone")
    assert found, f"{path.name}: commit {provenance['commit']} is not in this repository's history"
    if provenance["source"].startswith("backfilled"):
        # The backfilled commit is the one that wrote these numbers: that commit's file is this one without it.
        relative = path.relative_to(ROOT).as_posix()
        written = json.loads(git(ROOT, "show", f"{provenance['commit']}:{relative}"))
        current = json.loads(path.read_text())
        current.pop("provenance")
        assert written == current
    else:
        assert provenance["source"] == "recorded" and isinstance(provenance["clean"], bool)


def test_stamp_records_the_commit_and_whether_the_tree_was_clean(repo):
    machine = load_machine()
    (repo / "code.py").write_text("x = 1\n")
    head = commit_all(repo, "one")
    recorded = machine.stamp(root=repo)["provenance"]
    assert recorded == {"commit": head, "clean": True, "dirty_paths": [], "source": "recorded"}
    # A result written by an earlier benchmark is output, not code.
    (repo / "benchmarks" / "results").mkdir(parents=True)
    (repo / "benchmarks" / "results" / "other.json").write_text("{}\n")
    assert machine.provenance(repo)["clean"] is True
    (repo / "code.py").write_text("x = 2\n")
    (repo / "new file.py").write_text("")
    recorded = machine.provenance(repo)
    assert recorded["commit"] == head and recorded["clean"] is False
    assert recorded["dirty_paths"] == ["code.py", "new file.py"]


def test_stamp_without_git_or_a_repository_records_no_commit(tmp_path, monkeypatch):
    machine = load_machine()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    if shutil.which("git") is not None:
        outside = machine.provenance(tmp_path)
        assert outside["commit"] is None and outside["clean"] is None and "repository" in outside["reason"]
    monkeypatch.setenv("PATH", str(tmp_path))  # no git executable there
    recorded = machine.stamp(root=tmp_path)["provenance"]
    assert recorded["commit"] is None and recorded["clean"] is None
    assert recorded["reason"].startswith("git not available")


def fake_benchmarks(root: Path) -> dict[str, str]:
    """Two scripts measuring one file each, results recorded at the first commit; then lib.py changes."""
    (root / "benchmarks" / "results").mkdir(parents=True)
    (root / "src").mkdir()
    (root / "src" / "lib.py").write_text("A = 1\n")
    (root / "src" / "other.py").write_text("B = 1\n")
    (root / "benchmarks" / "fake.py").write_text('MEASURES = ("src/lib.py",)\n')
    (root / "benchmarks" / "quiet.py").write_text('MEASURES = ("src/other.py",)\n')
    first = commit_all(root, "code")
    for name in ("fake", "quiet"):
        provenance = {"commit": first, "clean": True, "dirty_paths": [], "source": "recorded"}
        (root / "benchmarks" / "results" / f"{name}.json").write_text(json.dumps({"provenance": provenance}))
    commit_all(root, "results")
    (root / "src" / "lib.py").write_text("A = 2\n")
    return {"first": first, "later": commit_all(root, "change lib")}


def test_staleness_flags_a_result_whose_measured_code_changed_and_only_that(repo):
    render = load_render()
    commits = fake_benchmarks(repo)
    results = repo / "benchmarks" / "results"
    fake = render.staleness(repo, results / "fake.json", render.measures(repo / "benchmarks" / "fake.py", repo))
    assert fake.stale and fake.changed == ["src/lib.py"] and fake.commits == [commits["later"]]
    assert fake.uncommitted == []
    quiet_paths = render.measures(repo / "benchmarks" / "quiet.py", repo)
    assert quiet_paths == ("src/other.py", "benchmarks/quiet.py")
    quiet = render.staleness(repo, results / "quiet.json", quiet_paths)
    assert not quiet.stale and quiet.changed == [] and quiet.unknown is None
    lines, outdated = render.check_staleness(["fake-part", "quiet"], root=repo)
    assert outdated and len(lines) == 1
    assert lines[0].startswith(f"stale: fake-part: benchmarks/results/fake.json measured at {commits['first'][:7]};")
    assert "src/lib.py changed since (1 commit)" in lines[0]
    # Uncommitted edits count, the script's own file too.
    (repo / "benchmarks" / "quiet.py").write_text('MEASURES = ("src/other.py",)  # edited\n')
    quiet = render.staleness(repo, results / "quiet.json", quiet_paths)
    assert quiet.stale and quiet.changed == quiet.uncommitted == ["benchmarks/quiet.py"] and quiet.commits == []


def test_staleness_of_an_unknown_commit_or_without_git_is_said_not_crashed(repo, monkeypatch):
    render = load_render()
    fake_benchmarks(repo)
    result = repo / "benchmarks" / "results" / "fake.json"
    result.write_text(json.dumps({"provenance": {"commit": "0" * 40, "clean": True, "source": "recorded"}}))
    state = render.staleness(repo, result, ("src/lib.py",))
    assert not state.stale and "not in this clone" in state.unknown
    lines, outdated = render.check_staleness(["fake"], root=repo)
    assert outdated and lines[0].startswith("cannot check staleness: fake: ")
    monkeypatch.setenv("PATH", str(repo / "src"))  # no git executable there
    lines, outdated = render.check_staleness(["fake", "quiet"], root=repo)
    assert outdated and len(lines) == 1 and lines[0].startswith("cannot check staleness: git not available")


def test_staleness_is_a_warning_unless_strict(tmp_path, monkeypatch, capsys):
    render = load_render()
    (tmp_path / "page.md").write_text("no generated blocks\n")
    monkeypatch.setattr(render, "DOCUMENTS", [tmp_path / "page.md"])
    monkeypatch.setattr(render, "check_staleness", lambda names, root=None: (["stale: x: measured at abc"], True))
    assert render.main(["--check"]) == 0
    assert "stale: x" in capsys.readouterr().err
    assert render.main(["--check", "--strict-stale"]) == 1


def test_every_measured_path_exists():
    # A misspelt path would never change, and its result would never be reported stale.
    render = load_render()
    for script in sorted((ROOT / "benchmarks").glob("[!_]*.py")):
        if script.name == "backfill_provenance.py":
            continue
        for path in render.measures(script):
            assert (ROOT / path).exists(), f"{script.name}: MEASURES names {path}, which does not exist"


def test_backfill_adds_only_the_provenance_and_keeps_the_format(repo):
    backfill = load_benchmark("backfill_provenance")
    results = repo / "benchmarks" / "results"
    results.mkdir(parents=True)
    data = {"a": [1.5, None], "b": {"c": "d"}}
    (results / "one.json").write_text(json.dumps(data, indent=1) + "\n")
    written = commit_all(repo, "result")
    (repo / "later.txt").write_text("")
    commit_all(repo, "later")
    assert "backfilled commit" in backfill.backfill(results / "one.json", root=repo)
    text = (results / "one.json").read_text()
    provenance = {"commit": written, "clean": None, "source": backfill.SOURCE}
    assert text == json.dumps(data | {"provenance": provenance}, indent=1) + "\n"
    assert "left as it is" in backfill.backfill(results / "one.json", root=repo)  # idempotent
    assert (results / "one.json").read_text() == text
    (results / "two.json").write_text("{}\n")  # never committed
    assert "no commit" in backfill.backfill(results / "two.json", root=repo)
    commit_all(repo, "two")
    (results / "two.json").write_text('{"new": 1}\n')  # a fresh, uncommitted result
    assert "differs" in backfill.backfill(results / "two.json", root=repo)
    assert (results / "two.json").read_text() == '{"new": 1}\n'


@pytest.mark.slow
def test_the_readme_example_runs_as_written_at_a_smaller_size():
    # The README's Python example, through the same extraction the script that records its output uses, with only
    # its sizes shrunk: every call in it exists and it prints the error and the phases.
    module = load_benchmark("readme_example")
    code = module.example_code()
    small = code
    for full, reduced in (("steps=3000", "steps=40"), ("4000", "300"), ("width=64, depth=4", "width=8, depth=2"),
                          ("every=50, dense_until=300", "every=5, dense_until=10")):
        assert full in small, f"the README example no longer contains {full!r}"
        small = small.replace(full, reduced)
    printed = module.run_example(small).splitlines()
    assert printed[0].startswith("relative L2 error: ")
    assert float(printed[0].split(": ")[1]) > 0
    assert printed[1].startswith("diffusion starts at step")
