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
