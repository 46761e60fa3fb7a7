"""Derives the rare-class sets from the quality suite's numeric sets: a small class among many rows.

Every two-class set of `../shared/quality/data/numeric` whose minority has more than 32 rows and
whose majority has at least 800 keeps all its majority rows and a sample of 32 minority rows
(numpy `RandomState(0)`, without replacement; rows stay in file order). The held-out sets where
SMRT's first defaults lost most were of this kind (32 minority rows among 4,174). The rule is fixed
in advance, so every set it picks counts, whatever SMRT does on it.

usage: rare_class_sets.py OUT_DIR [SUITE_DATA_DIR]
  writes OUT_DIR/NAME-32.csv for each set picked and prints their class counts.
"""
import os
import sys

import numpy as np
import pandas as pd

KEEP = 32
MIN_MAJORITY = 800


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    out = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    data = sys.argv[2] if len(sys.argv) > 2 else os.path.join(here, "..", "..", "shared", "quality", "data", "numeric")
    os.makedirs(out, exist_ok=True)
    for name in sorted(f[:-4] for f in os.listdir(data) if f.endswith(".csv")):
        table = pd.read_csv(os.path.join(data, f"{name}.csv"))
        label = table.columns[-1]
        counts = table[label].value_counts()
        if len(counts) != 2:
            continue
        minority, majority = counts.idxmin(), counts.idxmax()
        if counts[minority] <= KEEP or counts[majority] < MIN_MAJORITY:
            continue
        rows = np.flatnonzero(table[label].to_numpy() == minority)
        kept = np.sort(np.random.RandomState(0).choice(rows, KEEP, replace=False))
        mask = table[label].to_numpy() == majority
        mask[kept] = True
        table[mask].to_csv(os.path.join(out, f"{name}-{KEEP}.csv"), index=False)
        print(f"{name}-{KEEP}: {int(counts[majority])} + {KEEP} rows, {table.shape[1] - 1} features")


if __name__ == "__main__":
    main()
