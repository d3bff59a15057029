"""Random bad input to every command: exit code 2, a message, no traceback, nothing trained, nothing written."""

import importlib
import os
import string
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pinnkit import problems
from pinnkit.compare import PRESETS
from pinnkit.optimizers import OPTIMIZERS, REWEIGHTINGS

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


class TrainingStarted(AssertionError):
    """Raised instead of training: bad input must be refused before any step."""


@pytest.fixture(autouse=True)
def no_training(monkeypatch):
    def refuse(*args, **kwargs):
        raise TrainingStarted("bad input reached training")

    # By module object: the package re-exports functions named like its modules (pinnkit.compare).
    monkeypatch.setattr(importlib.import_module("pinnkit.experiment"), "fit_stacked", refuse)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bad-files")
    made = {
        "empty": b"",
        "garbage": bytes(range(256)) * 3,
        "header-only.csv": b"step,snr\n",
        "text.csv": b"step,snr\n1,abc\n2,x\n",
        "no-snr.csv": b"step,loss\n1,0.5\n2,0.25\n",
        "checkpoint-000010.eqx": b"PINNKIT-CKPT\n" + b"\x00" * 10,
    }
    for name, content in made.items():
        (folder / name).write_bytes(content)
    (folder / "empty-folder").mkdir()
    return folder


def invoke(args):
    """The console script in-process: (exit code, stderr); training raises TrainingStarted instead."""
    code, _, stderr = run_cli(*args)
    return code, stderr


def check_refused(args, out: Path | None = None):
    code, stderr = invoke(args)
    assert code == 2, (args, code, stderr)
    assert stderr.strip(), args
    assert "Traceback" not in stderr, args
    assert len(stderr.strip().splitlines()) == 1, (args, stderr)
    if out is not None:
        assert not out.exists(), f"{args} left {out} behind"


# ----- strategies ---------------------------------------------------------------------------------------------
def unknown_name(known):
    known = set(known)
    return st.text(string.ascii_letters + string.digits + "-_", min_size=1, max_size=12).filter(
        lambda name: name not in known and not name.startswith("-"))


non_positive = st.integers(max_value=0)
negative = st.integers(max_value=-1)
bad_rate = st.sampled_from(["nan", "inf", "-inf", "0", "-1e-3", "-5", "NaN", "1e308", "1e9"])
not_a_number = st.sampled_from(["abc", "1.5.2", "", "1e", "--", "0x"])
bad_param = st.one_of(
    st.sampled_from(["a1", "=3", "a1=", "=", "a1=nan", "a1=inf", "a1=-inf"]),
    unknown_name(["a1", "a2", "k", "grid_size"]).map(lambda name: f"{name}=1"),
)

TRAIN_INTS = ["--steps", "--width", "--depth", "--points", "--log-every", "--devices", "--checkpoint-every",
              "--keep-checkpoints"]


def train_case():
    return st.one_of(
        st.tuples(st.sampled_from(TRAIN_INTS), non_positive.map(str)),
        st.tuples(st.sampled_from(TRAIN_INTS + ["--snr-batches", "--seed"]), not_a_number),
        st.tuples(st.just("--snr-batches"), st.one_of(negative, st.just(1), st.integers(4001, 10**6)).map(str)),
        st.tuples(st.just("--seed"), st.one_of(negative, st.integers(2**32, 2**70)).map(str)),
        st.tuples(st.just("--devices"), st.integers(4097, 10**6).map(str)),  # more than any machine has
        st.tuples(st.just("--lr"), bad_rate),
        st.tuples(st.just("--problem"), unknown_name(problems.names())),
        st.tuples(st.just("--optimizer"), unknown_name(OPTIMIZERS)),
        st.tuples(st.just("--reweight"), unknown_name(REWEIGHTINGS)),
        st.tuples(st.just("--schedule"), unknown_name(["paper", "constant"])),
        st.tuples(st.just("--param"), bad_param),
        st.tuples(st.just("--resume"), st.sampled_from(["empty", "garbage", "header-only.csv", "missing",
                                                         "empty-folder", "checkpoint-000010.eqx"])),
    )


def compare_case():
    return st.one_of(
        st.tuples(st.sampled_from(["--steps", "--seeds", "--width", "--depth", "--points"]), non_positive.map(str)),
        st.tuples(st.just("--lr"), bad_rate),
        st.tuples(st.just("--optimizers"),
                  st.one_of(unknown_name(OPTIMIZERS), st.sampled_from([",", " ", "", "adam,adam"]))),
        st.tuples(st.just("--reweight"),
                  st.one_of(unknown_name(REWEIGHTINGS), st.sampled_from([",", "", "rba,rba"]))),
        st.tuples(st.just("--preset"), unknown_name(PRESETS)),
        st.tuples(st.just("--problem"), unknown_name(problems.names())),
        st.tuples(st.just("--switch-step"), st.one_of(non_positive, st.integers(3000, 10**7)).map(str)),
        st.tuples(st.just("--param"), bad_param),
    )


# ----- tests --------------------------------------------------------------------------------------------------
@SETTINGS
@given(case=train_case())
def test_train_refuses_bad_values(files, case):
    option, value = case
    if option == "--resume":
        # --resume takes no configuration options; the folder or file is the bad value.
        check_refused(["train", "--resume", files / value])
        return
    out = Path(tempfile.mkdtemp(dir=files)) / "run"
    check_refused(["train", option, value, "--out", out], out)


@SETTINGS
@given(case=compare_case())
def test_compare_refuses_bad_values(files, case):
    option, value = case
    out = Path(tempfile.mkdtemp(dir=files)) / "run"
    check_refused(["compare", option, value, "--out", out], out)


@SETTINGS
@given(name=st.sampled_from(["empty", "garbage", "header-only.csv", "text.csv", "no-snr.csv", "missing.csv",
                             "empty-folder"]),
       errors=st.sampled_from([None, "empty", "garbage", "missing.csv"]), as_json=st.booleans())
def test_detect_and_plot_refuse_bad_files(files, name, errors, as_json):
    args = ["detect", files / name]
    if errors is not None:
        args += ["--errors", files / errors]
    if as_json:
        args.append("--json")
    check_refused(args)
    check_refused(["plot", files / name])


@pytest.mark.parametrize("args", [["train", "--lr", "nan"], ["detect", "{files}/empty"]])
def test_the_console_script_refuses_bad_input_without_a_traceback(files, args):
    args = [arg.format(files=files) for arg in args]
    env = dict(os.environ, JAX_PLATFORMS="cpu")
    done = subprocess.run([sys.executable, "-c", "from pinnkit_cli.app import main; main()", *args],
                          capture_output=True, text=True, env=env, timeout=120, cwd=files)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stderr.startswith("error: ")


@pytest.mark.parametrize("value", ["a1=abc", "a1==2", "a1=true"])
def test_non_numeric_problem_parameters_are_refused(files, value):
    out = Path(tempfile.mkdtemp(dir=files)) / "run"
    check_refused(["train", "--param", value, "--out", out], out)


# ----- messages name what the user typed ----------------------------------------------------------------------
def refused_saying(args, *needles):
    code, stderr = invoke(args)
    assert code == 2 and len(stderr.strip().splitlines()) == 1 and "Traceback" not in stderr, (args, stderr)
    for needle in needles:
        assert needle in stderr, (args, needle, stderr)


@pytest.mark.parametrize("args, needles", [
    (["train", "--log-every", "0"], ["--log-every", "got 0"]),
    (["train", "--snr-batches", "1"], ["--snr-batches"]),
    (["compare", "--snr-batches", "-3"], ["--snr-batches", "got -3"]),
    (["train", "--reweight", "rba", "--reweight-option", "phi=2"],
     ["error: --reweight-option phi: rba takes no option 'phi'; its options are eta, gamma, "]),
    (["compare", "--lr", "adam=3e-3,lbfgs=1"], ["'lbfgs'", "not a first-order optimizer"]),
    (["compare", "--lr", "adam=fast"], ["--lr", "adam=fast", "name=rate pairs"]),
    (["compare", "--lr", "adam=1e-3,adam=1e-2"], ["--lr", "name=rate pairs"]),
    (["compare", "--lr", "sgd=-1"], ["learning rate", "got -1"]),
    (["train", "--lr", "adam=1e-3"], ["--lr adam=1e-3", "rates per optimizer are for compare"]),
], ids=["train-log-every", "train-snr-batches", "compare-snr-batches", "train-reweight-option", "compare-lr-name",
        "compare-lr-value", "compare-lr-twice", "compare-lr-negative", "train-lr-pairs"])
def test_messages_name_the_flag(files, args, needles):
    out = Path(tempfile.mkdtemp(dir=files)) / "run"
    refused_saying([*args, "--out", out], *needles)
    assert not out.exists()


@pytest.mark.parametrize("reweights, option, needles", [
    ("none", "eta=0.1", ["--reweight-option eta", "no reweighting in the list (none) takes it"]),
    ("none,rba", "phi=0.5", ["--reweight-option phi", "no reweighting in the list (none, rba) takes it",
                             "it is an option of vrba"]),
    ("rba,vrba", "phi=0.5", ["--reweight-option phi: rba takes no option 'phi'", "every reweighting"]),
], ids=["only-none", "none-takes-it", "one-does-not"])
def test_compare_refuses_a_reweight_option_a_listed_reweighting_would_ignore(files, reweights, option, needles):
    out = Path(tempfile.mkdtemp(dir=files)) / "run"
    refused_saying(["compare", "--reweight", reweights, "--reweight-option", option, "--out", out], *needles)
    assert not out.exists()


def test_an_existing_output_folder_names_the_overwrite_flag(files):
    from pinnkit.outputs import claim_output

    out = Path(tempfile.mkdtemp(dir=files)) / "run"
    claim_output(out, kind="train").commit()
    refused_saying(["train", "--out", out], "pass overwrite=True (--overwrite)")


def test_a_very_long_output_path_is_shortened(files):
    out = Path(tempfile.mkdtemp(dir=files)) / "/".join(["d" * 200] * 25)  # over 5,000 characters, under NAME_MAX each
    code, stderr = invoke(["train", "--out", out])
    assert code == 2 and len(stderr) < 400, stderr[:400]
    assert f"({len(str(out))} characters)" in stderr
