#!/usr/bin/env python3
"""imbalanced-learn's SMOTENC on the data of `cargo bench --bench smote` (group smote-nc):
100,000 rows, 24 Gaussian numeric columns and 8 categorical columns of 5 values drawn uniformly,
majority:minority 20:1 (the minority shifted by 1 on the numeric columns), k = 5, balanced fully.

  python3 scripts/smotenc_speed.py [--rows 100000] [--threads 2] [--repeat 5]

Prints the best time of `fit_resample` and synthetic rows/s. Needs numpy, imbalanced-learn,
threadpoolctl.
"""
import argparse
import time

import numpy as np
from imblearn.over_sampling import SMOTENC
from threadpoolctl import threadpool_limits


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    minority = round(args.rows / 21)
    numeric = rng.standard_normal((args.rows, 24)).astype(np.float32)
    numeric[:minority] += 1
    codes = rng.integers(0, 5, size=(args.rows, 8)).astype(np.float32)
    x = np.hstack([numeric, codes])
    y = (np.arange(args.rows) < minority).astype(np.int64)
    smote = SMOTENC(categorical_features=list(range(24, 32)), k_neighbors=5, random_state=0)
    best = float("inf")
    with threadpool_limits(args.threads):
        for _ in range(args.repeat):
            start = time.perf_counter()
            _, yr = smote.fit_resample(x, y)
            best = min(best, time.perf_counter() - start)
    synthetic = len(yr) - args.rows
    print(f"smotenc rows={args.rows} synthetic={synthetic} best_s={best:.4f} rows_per_s={synthetic / best:.0f}")


if __name__ == "__main__":
    main()
