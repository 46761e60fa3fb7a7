"""Every set's record across seeds: smrt minus SMOTE (mean of the four metrics), per set.

usage: quality_across_seeds.py DIR SEED...
  DIR holds smrt-sS.json and base-sS/{random,smote}.json for each seed S (as
  scripts/quality-seeds.sh writes them). Prints, per set (worst mean first): the mean over the
  seeds, its standard deviation, the worst seed, how many seeds are below -0.01, and random
  over-sampling minus SMOTE for comparison; then the totals over every (set, seed) pair, and
  the chance that one seed finds no set below -0.01 if each set's difference at a seed were
  normal with the mean and standard deviation seen over the seeds (two or more seeds).
"""
import json
import math
import statistics as st
import sys

M = ["auc", "f1", "gmean", "bacc"]


def sets(path):
    return json.load(open(path))["datasets"]


def minus(a, b):
    """Mean over the four metrics of a's mean over classifiers minus b's."""
    return st.mean(st.mean(a["mean"][c][m] - b["mean"][c][m] for c in a["mean"]) for m in M)


def chance(record):
    """The chance of no set below -0.01 at one seed, with and without the set least likely to
    pass, each set's difference taken as normal with its mean and sd over the seeds."""
    def above(d):
        sd = st.stdev(d)
        if sd == 0.0:
            return float(st.mean(d) >= -0.01)
        return 0.5 * (1.0 + math.erf((st.mean(d) + 0.01) / (sd * math.sqrt(2.0))))
    p = {name: above([x for x, _ in r]) for name, r in record.items()}
    worst = min(p, key=p.get)
    every = math.prod(p.values())
    rest = math.prod(v for n, v in p.items() if n != worst)
    return (f"chance of no set below -0.01 at one seed (normal per set): {every:.2f}, at two "
            f"seeds {every ** 2:.2f}; without {worst} ({p[worst]:.2f}): {rest:.2f} and {rest ** 2:.2f}")


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    out, seeds = sys.argv[1], sys.argv[2:]
    record = {}
    for s in seeds:
        smrt, smote = sets(f"{out}/smrt-s{s}.json"), sets(f"{out}/base-s{s}/smote.json")
        rnd = sets(f"{out}/base-s{s}/random.json")
        for name, run in smrt.items():
            record.setdefault(name, []).append((minus(run, smote[name]), minus(rnd[name], smote[name])))
    print(f"{'set':34s} {'mean':>7s} {'sd':>6s} {'worst':>7s} {'< -0.01':>8s} {'random':>7s}")
    every = []
    for name in sorted(record, key=lambda n: st.mean(d for d, _ in record[n])):
        d = [x for x, _ in record[name]]
        every += d
        sd = st.stdev(d) if len(d) > 1 else 0.0
        below = sum(x < -0.01 for x in d)
        rnd = st.mean(r for _, r in record[name])
        print(f"{name[:34]:34s} {st.mean(d):+7.3f} {sd:6.3f} {min(d):+7.3f} {below:>4d}/{len(d):<3d} {rnd:+7.3f}")
    if len(seeds) > 1:
        print(chance(record))
    print(f"{len(every)} (set, seed) pairs: mean {st.mean(every):+.4f}, ahead of SMOTE on "
          f"{sum(x > 0 for x in every)}, below -0.01 on {sum(x < -0.01 for x in every)}")


if __name__ == "__main__":
    main()
