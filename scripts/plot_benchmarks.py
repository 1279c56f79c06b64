"""Draw the benchmark plots again from the results.json beside them, without measuring anything (after a
change to how the plots are drawn; the numbers are the committed ones).

Usage: python scripts/plot_benchmarks.py [DIRECTORY ...]   (default: docs/benchmarks and docs/benchmarks/base)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from roberta2longformer.bench.run import plot_results

ROOT = Path(__file__).resolve().parents[1]

if __name__ == "__main__":
    directories = [Path(d) for d in sys.argv[1:]] or [
        ROOT / "docs" / "benchmarks",
        ROOT / "docs" / "benchmarks" / "base",
    ]
    for directory in directories:
        results = json.loads((directory / "results.json").read_text(encoding="utf-8"))
        plot_results(results, directory)
        print(f"Drew the plots of {directory}")
