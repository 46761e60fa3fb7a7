"""Where each balancer's synthetic rows land, on a table whose features all take few values.

For every training fold of the quality harness (`StratifiedKFold(5, shuffle=True,
random_state=SEED)`, balancer seed `SEED*1000+fold`, every class raised to the majority count),
it balances the fold with imbalanced-learn's SMOTE, with random over-sampling and with smrt's
defaults, and sorts each synthetic row of the minority class into one of four kinds:

- off the grid: some value is one no training row has in that column (a real row never falls there);
- on a pattern the class already wins: the fold holds more minority than majority rows with
  exactly these values, so a classifier that memorises patterns already predicts the minority;
- on a pattern the majority holds as often or more, where a new minority row can change the decision;
- on a pattern no training row of the majority has.

A row on a pattern the class already wins, or off the grid, cannot change what a tree predicts
for a real row; only the third kind moves decisions toward the minority.

usage: where_rows_land.py DATASET_CSV SMRT_BINARY [SEED...]   (seeds default to 0 1)
"""
import collections
import os
import subprocess
import sys
import tempfile

import numpy as np
import pandas as pd
from imblearn.over_sampling import SMOTE, RandomOverSampler
from sklearn.model_selection import StratifiedKFold

KINDS = ("off the grid", "on a pattern the class already wins",
         "on a pattern the majority holds as often or more", "on a pattern the majority lacks")


def smrt_rows(binary: str, table: pd.DataFrame, seed: int) -> np.ndarray:
    """The synthetic rows smrt appends to `table` (written after the real rows)."""
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = os.path.join(tmp, "in.csv"), os.path.join(tmp, "out.csv")
        table.to_csv(src, index=False)
        subprocess.run([binary, "balance", "--input", src, "--output", dst, "--seed", str(seed),
                        "--quiet", "--backend", "cpu"], check=True)
        return pd.read_csv(dst).iloc[len(table):, :-1].to_numpy(dtype=float)


def kinds(rows: np.ndarray, x: np.ndarray, y: np.ndarray, minority) -> collections.Counter:
    grid = [set(column) for column in x.T]
    own = collections.Counter(map(tuple, x[y == minority]))
    other = collections.Counter(map(tuple, x[y != minority]))
    count = collections.Counter()
    for row in rows:
        pattern = tuple(row)
        if any(v not in values for v, values in zip(pattern, grid)):
            count[KINDS[0]] += 1
        elif own[pattern] > other[pattern]:
            count[KINDS[1]] += 1
        elif other[pattern] > 0:
            count[KINDS[2]] += 1
        else:
            count[KINDS[3]] += 1
    return count


def main() -> None:
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, binary = sys.argv[1], sys.argv[2]
    seeds = [int(s) for s in sys.argv[3:]] or [0, 1]
    table = pd.read_csv(path)
    x, y = table.iloc[:, :-1].to_numpy(dtype=float), table.iloc[:, -1].to_numpy()
    counts = table.iloc[:, -1].value_counts()
    if len(counts) != 2:
        sys.exit("where_rows_land.py: the table must have two classes")
    minority = counts.idxmin()
    for seed in seeds:
        totals = {name: collections.Counter() for name in ("SMOTE", "random", "smrt")}
        folds = StratifiedKFold(5, shuffle=True, random_state=seed).split(x, y)
        for fold, (train, _) in enumerate(folds):
            xt, yt, balancer_seed = x[train], y[train], seed * 1000 + fold
            drawn = {
                "SMOTE": SMOTE(random_state=balancer_seed).fit_resample(xt, yt)[0][len(xt):],
                "random": RandomOverSampler(random_state=balancer_seed).fit_resample(xt, yt)[0][len(xt):],
                "smrt": smrt_rows(binary, table.iloc[train], balancer_seed),
            }
            for name, rows in drawn.items():
                totals[name] += kinds(rows, xt, yt, minority)
        for name, count in totals.items():
            n = sum(count.values())
            shares = ", ".join(f"{kind} {count[kind] / n:.0%}" for kind in KINDS)
            print(f"seed {seed} {name:6s} {n} rows: {shares}")


if __name__ == "__main__":
    main()
