"""How long a command takes to start: `qa-mailer --help`, `--version`, `status` beside bare Python.

Each command runs in a fresh interpreter, as a person typing it runs it; `status` reads a
fresh SQLite database brought to the newest migration first. The baselines, `python -c pass`
and `python -c "import click"` (the least any click command costs), run in the same rounds,
interleaved with the commands, so a busy moment on a shared machine slows all of them alike.
Figures are medians over the rounds, in seconds of wall-clock time, after a warm-up run of
each that writes the bytecode (to a temporary PYTHONPYCACHEPREFIX).

With `--before REV`, the same commands also run from the code of git revision REV (extracted
to a temporary folder and put first on PYTHONPATH; the installed libraries are the same), to
show a change's effect beside the baselines of the same run.

Usage: python bench/bench_startup.py [--rounds N] [--before REV]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.helpers import write_config  # noqa: E402

# The `qa-mailer` command, run from the code in the folder put first on PYTHONPATH.
RUN_CLI = "import sys; from qa_mailer.cli import main; sys.exit(main(prog_name='qa-mailer'))"


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    """Seconds from start to exit; a failing command stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.decode(errors='replace')}")
    return elapsed


def extract(revision: str, into: Path) -> Path:
    """The files of ``revision`` (its qa_mailer, migrations and templates) in a folder."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", revision],
        check=True,
        capture_output=True,
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=9, help="how many rounds (default 9)")
    parser.add_argument("--before", metavar="REV", help="also time the code of git revision REV")
    options = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-startup-") as scratch:
        folder = Path(scratch)
        config = write_config(folder / "config", f"sqlite+aiosqlite:///{folder / 'db.sqlite'}")
        # Bytecode goes to a folder of its own, written by the warm-up runs, as an installed
        # package has it: with PYTHONDONTWRITEBYTECODE (set on these machines) every run would
        # compile the sources again, and the older revision's extracted tree has none at all.
        unset = {"QA_MAILER_CONFIG", "PYTHONDONTWRITEBYTECODE"}
        env = {k: v for k, v in os.environ.items() if k not in unset}
        env["PYTHONPYCACHEPREFIX"] = str(folder / "pycache")
        trees = {"now": ROOT}
        if options.before:
            trees[options.before] = extract(options.before, folder / "before")

        def cli(tree: Path, *args: str) -> tuple[list[str], dict[str, str]]:
            return (
                [sys.executable, "-c", RUN_CLI, "--config", str(config.path), *args],
                {**env, "PYTHONPATH": str(tree)},
            )

        argv, upgrade_env = cli(ROOT, "db", "upgrade")
        timed(argv, upgrade_env, folder)

        cases: dict[str, tuple[list[str], dict[str, str]]] = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            'python -c "import click"': ([sys.executable, "-c", "import click"], env),
        }
        for label, tree in trees.items():
            suffix = "" if label == "now" else f" (at {label})"
            for args in (("--help",), ("--version",), ("status",)):
                cases[f"qa-mailer {' '.join(args)}{suffix}"] = cli(tree, *args)

        # One warm-up run of each (the first reads every file from disk), then the rounds.
        for argv, case_env in cases.values():
            timed(argv, case_env, folder)
        times: dict[str, list[float]] = {name: [] for name in cases}
        for _ in range(options.rounds):
            for name, (argv, case_env) in cases.items():
                times[name].append(timed(argv, case_env, folder))

    bare = statistics.median(times["python -c pass"])
    print(f"median of {options.rounds} rounds, seconds (each beside the baselines of this run)")
    print(f"{'command':<36} {'median':>7} {'min':>7} {'minus bare Python':>18}")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:<36} {median:7.3f} {min(values):7.3f} {median - bare:18.3f}")


if __name__ == "__main__":
    main()
