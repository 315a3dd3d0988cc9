"""``make bench-ab A=REV B=REV``: the PSP's figures of two commits, side by side.

This machine's speed drifts several-fold from one day to the next, so two
figures taken an hour apart say little. This runs ``bench/psp_bench.py``
of each commit in turn, A B A B ..., each in its own tree and its own
interpreter environment, and prints the median of each figure and the
ratio B/A. A ratio near 1 means no change; for times and CPU, below 1 is
better, for throughput above.

Each side runs from a ``git worktree`` of its commit (in a temporary
folder, removed at the end) with a small environment of its own: the
packages of this checkout's ``.venv`` and the side's tree first on the
path, and the side's own console scripts, made from its own
``pyproject.toml`` (its ``psp-server`` may live in another module than
this checkout's).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIT = shutil.which("git") or "git"

# (label, key in the SQLite figures or "pgN:key" for PostgreSQL with N
# workers, True when a higher value is better)
FIGURES: tuple[tuple[str, str, bool], ...] = (
    ("SQLite checkouts/s (64 clients)", "checkouts_per_second", True),
    ("SQLite PSP CPU ms/checkout", "psp_cpu_ms_per_checkout", False),
    ("SQLite lone create p50 ms", "lone_create_ms_p50", False),
    ("SQLite lone create p99 ms", "lone_create_ms_p99", False),
    ("SQLite lone pay p50 ms", "lone_pay_ms_p50", False),
    ("SQLite lone pay p99 ms", "lone_pay_ms_p99", False),
    ("PostgreSQL 1 worker checkouts/s", "pg1:checkouts_per_second", True),
    ("PostgreSQL 1 worker PSP CPU ms/checkout", "pg1:psp_cpu_ms_per_checkout", False),
    ("PostgreSQL 1 worker PG CPU ms/checkout", "pg1:postgresql_cpu_ms_per_checkout", False),
    ("PostgreSQL 1 worker lone create p50 ms", "pg1:lone_create_ms_p50", False),
    ("PostgreSQL 1 worker lone create p99 ms", "pg1:lone_create_ms_p99", False),
    ("PostgreSQL 1 worker lone pay p50 ms", "pg1:lone_pay_ms_p50", False),
    ("PostgreSQL 1 worker lone pay p99 ms", "pg1:lone_pay_ms_p99", False),
    ("PostgreSQL 2 workers checkouts/s", "pg2:checkouts_per_second", True),
    ("PostgreSQL 2 workers PSP CPU ms/checkout", "pg2:psp_cpu_ms_per_checkout", False),
    ("machine speed (hello-world requests/s)", "hello_world_requests_per_second", True),
)


def git(*args: str, cwd: Path = ROOT) -> str:
    return subprocess.run(
        [GIT, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout.strip()


def environment_for(tree: Path, folder: Path) -> Path:
    """A python for ``tree``: this checkout's packages, the tree's code
    first, and the tree's console scripts. Returns its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(folder), "platbase": str(folder)}))
    ours = sysconfig.get_path("purelib")
    # The tree first, so that its packages win over this checkout's
    # editable install, which the shared packages' folder also holds.
    (site / "00-side.pth").write_text(f"{tree}\n{ours}\n")
    python = folder / "bin" / "python"
    scripts = tomllib.loads((tree / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        module, function = target.split(":")
        script = folder / "bin" / name
        script.write_text(
            f"#!{python}\nimport sys\nfrom {module} import {function}\nsys.exit({function}())\n"
        )
        script.chmod(0o755)
    return python


def run_once(python: Path, tree: Path, quick: bool) -> dict[str, float]:
    command = [str(python), "bench/psp_bench.py"] + (["--quick"] if quick else [])
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{tree.name}: psp_bench failed:\n{done.stdout}\n{done.stderr}")
    written = [line for line in done.stdout.splitlines() if line.startswith("written ")]
    report = json.loads((tree / written[-1].removeprefix("written ")).read_text())
    figures: dict[str, float] = {
        k: float(v) for k, v in report.items() if isinstance(v, int | float)
    }
    for pg in report.get("postgresql", []):
        for key, value in pg.items():
            figures[f"pg{int(pg['workers'])}:{key}"] = float(value)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="the commit to compare against (A)")
    parser.add_argument("b", help="the commit to compare (B)")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each side (default 3)")
    parser.add_argument("--full", action="store_true", help="psp_bench's full runs, not --quick")
    args = parser.parse_args()
    revs = {"A": git("rev-parse", "--short", args.a), "B": git("rev-parse", "--short", args.b)}
    runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # a TextIOWrapper
    with tempfile.TemporaryDirectory(prefix="bench-ab-") as tmp:
        trees: dict[str, tuple[Path, Path]] = {}
        try:
            for side, rev in revs.items():
                tree = Path(tmp) / f"tree-{side}"
                git("worktree", "add", "--detach", str(tree), rev)
                trees[side] = (tree, environment_for(tree, Path(tmp) / f"env-{side}"))
            for n in range(args.rounds):
                for side in ("A", "B") if n % 2 == 0 else ("B", "A"):
                    tree, python = trees[side]
                    figures = run_once(python, tree, quick=not args.full)
                    runs[side].append(figures)
                    rate = figures.get("checkouts_per_second", 0.0)
                    print(f"round {n + 1} {side} ({revs[side]}): {rate:,.0f} checkouts/s")
        finally:
            for tree, _ in trees.values():
                git("worktree", "remove", "--force", str(tree))
    print(f"\nmedians of {args.rounds} alternating runs; A = {revs['A']}, B = {revs['B']}")
    print(f"{'figure':44} {'A':>10} {'B':>10} {'B/A':>7}")
    for label, key, higher_is_better in FIGURES:
        if not all(key in r for r in runs["A"] + runs["B"]):
            continue
        a = statistics.median(r[key] for r in runs["A"])
        b = statistics.median(r[key] for r in runs["B"])
        ratio = b / a if a else float("nan")
        better = (ratio > 1) == higher_is_better
        mark = "" if abs(ratio - 1) < 0.05 else (" better" if better else " worse")
        print(f"{label:44} {a:10.2f} {b:10.2f} {ratio:7.2f}{mark}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
