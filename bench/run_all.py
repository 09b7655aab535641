"""Run every benchmark under bench/ in turn and print their figures (`make bench`).

    uv run --frozen python bench/run_all.py [--quick] [--only NAME ...]

Order: bench/smpp_bench.py (codec, session, pacing), bench/e2e_load.py (HTTP sends
end to end, with receipts), then any other bench/*.py script, alphabetically. Each
runs as its own process with this interpreter; `--quick` is passed to the scripts
that accept it. A script that is missing is skipped; one that fails is reported, and
the exit code is non-zero if any failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
FIRST = ["smpp_bench.py", "e2e_load.py"]


def scripts(only: list[str]) -> list[Path]:
    found = sorted(p for p in HERE.glob("*.py") if p.name != Path(__file__).name)
    ordered = [HERE / name for name in FIRST if (HERE / name).exists()]
    ordered += [p for p in found if p.name not in FIRST]
    if only:
        wanted = {n if n.endswith(".py") else f"{n}.py" for n in only}
        ordered = [p for p in ordered if p.name in wanted]
    return ordered


def accepts_quick(script: Path) -> bool:
    return '"--quick"' in script.read_text(encoding="utf-8", errors="replace")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="shorter runs where supported")
    parser.add_argument("--only", nargs="*", default=[], help="script names to run")
    args = parser.parse_args(argv)
    for name in FIRST:
        if not (HERE / name).exists():
            print(f"# bench/{name} not found: skipped", flush=True)
    results: list[tuple[str, int, float]] = []
    for script in scripts(args.only):
        cmd = [sys.executable, str(script)]
        if args.quick and accepts_quick(script):
            cmd.append("--quick")
        print(f"\n=== {script.name} {' '.join(cmd[2:])}".rstrip(), flush=True)
        started = time.monotonic()
        code = subprocess.run(cmd, check=False).returncode
        results.append((script.name, code, time.monotonic() - started))
    print("\n=== summary", flush=True)
    for name, code, seconds in results:
        print(f"{name:<20} {'ok' if code == 0 else f'FAILED (exit {code})':<18} {seconds:6.1f} s")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
