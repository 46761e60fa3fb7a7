#!/usr/bin/env python3
"""smrt's samplers against imbalanced-learn's, from Python, in one process on the same threads.

  python3 python/bench.py [--rows 100000] [--features 32] [--threads 2] [--repeat 25]

Data: rows x features Gaussian, majority:minority 20:1, the minority shifted by 1 (the data of
`shared/bench/smote_speed.py`), float64 as most callers hold it. Each figure is the best of
`--repeat` calls of `fit_resample`, the conversion of the arrays in and out included.
"""
import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits


def best(repeat, f):
    t = float("inf")
    for _ in range(repeat):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--features", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=25)
    args = ap.parse_args()

    import imblearn
    from imblearn.over_sampling import SMOTE as ISMOTE
    from imblearn.over_sampling import RandomOverSampler as IROS

    import smrt

    rng = np.random.default_rng(0)
    minority = round(args.rows / 21)
    X = rng.standard_normal((args.rows, args.features))
    X[:minority] += 1
    y = (np.arange(args.rows) < minority).astype(np.int64)
    pairs = [
        ("SMOTE k=5", smrt.SMOTE(random_state=0, backend="cpu"), ISMOTE(k_neighbors=5, random_state=0)),
        ("RandomOverSampler", smrt.RandomOverSampler(random_state=0), IROS(random_state=0)),
    ]
    print(f"smrt {smrt.__version__}, imbalanced-learn {imblearn.__version__}, {args.rows} x {args.features}, "
          f"1:20, {args.threads} threads, best of {args.repeat}")
    print(f"{'sampler':<20} {'smrt s':>10} {'imblearn s':>11} {'ratio':>7}")
    with threadpool_limits(args.threads):
        for name, ours, theirs in pairs:
            ours.fit_resample(X, y)
            a = best(args.repeat, lambda: ours.fit_resample(X, y))
            b = best(args.repeat, lambda: theirs.fit_resample(X, y))
            print(f"{name:<20} {a:>10.4f} {b:>11.4f} {b / a:>6.1f}x")


if __name__ == "__main__":
    main()
