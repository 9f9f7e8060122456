"""``python -m tests.faults [CLAIM]``: run the catalogue and print the fault-score table."""

from __future__ import annotations

import sys

from .catalogue import CATALOGUE
from .score import run_fault, table


def main(argv: list[str]) -> int:
    """Run the faults (of one claim when named); exit 1 unless all are caught."""
    faults = [f for f in CATALOGUE if not argv or f.claim in argv]
    outcomes = []
    for fault in faults:
        outcomes.append(run_fault(fault))
        sys.stderr.write(".")
        sys.stderr.flush()
    sys.stderr.write("\n")
    sys.stdout.write(table(outcomes) + "\n")
    return 0 if all(o.caught for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
