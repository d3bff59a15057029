"""The documentation's numbers come from scripts: every generated block equals what its JSON renders."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def load_render():
    spec = importlib.util.spec_from_file_location("docs_render", ROOT / "docs" / "render.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


@pytest.mark.parametrize("path", sorted((ROOT / "benchmarks" / "results").glob("*.json")))
def test_results_are_valid_json(path):
    json.loads(path.read_text())


def test_the_readme_example_runs_as_written_at_a_smaller_size():
    # The README's Python example, through the same extraction the script that records its output uses, with only
    # its sizes shrunk: every call in it exists and it prints the error and the phases.
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        spec = importlib.util.spec_from_file_location("readme_example", ROOT / "benchmarks" / "readme_example.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
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
