"""How long find_personal_data() takes per statement, next to sqlglot.parse_one of the same.

The statements are the labelled corpus of the tests (``tests/risk_corpus``: several dialects,
joins, CTEs, unions, windows, stars, bad SQL). The reference is plain ``sqlglot.parse_one`` of
each statement in its dialect, timed alternately in the same process: find_personal_data parses
too, then qualifies, traces the lineage and classifies, so the ratio says what the analysis costs
over the parse alone.

Run: ``python benchmarks/bench_risk.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
from pathlib import Path
from typing import List, Optional, Tuple

import sqlglot
from common import alternate

from inspector.risk import find_personal_data

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "risk_corpus"


def load_statements() -> List[Tuple[str, Optional[str]]]:
    """(sql, dialect) of every statement of the corpus."""
    statements = []
    for path in sorted(CORPUS.glob("*.jsonl")):
        for line in path.read_text("utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                statements.append((entry["sql"], entry["dialect"]))
    return statements


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9, help="alternating runs over the corpus")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # sqlglot's "falling back to a Command" warnings
    statements = load_statements()

    def analyse_all() -> None:
        for sql, dialect in statements:
            find_personal_data(sql, dialect)

    def parse_all() -> None:
        for sql, dialect in statements:
            try:
                sqlglot.parse_one(sql, read=dialect)
            except sqlglot.errors.ParseError:
                pass  # the corpus has unparseable statements on purpose

    ratio, ours, theirs = alternate(analyse_all, parse_all, args.runs)
    count = len(statements)
    print(f"{count} statements, {args.runs} runs each (sqlglot {sqlglot.__version__})")
    print(f"find_personal_data: {statistics.median(ours) / count * 1e3:.2f} ms per statement")
    print(f"sqlglot.parse_one:  {statistics.median(theirs) / count * 1e3:.2f} ms per statement")
    print(f"median ratio find_personal_data / parse_one: {ratio:.1f}x")


if __name__ == "__main__":
    main()
