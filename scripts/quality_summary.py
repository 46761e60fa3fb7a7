"""The numbers issue-level quality targets are stated in, for one smrt run of the quality suite.

Ranks smrt among none / random / SMOTE (the suite's baselines of the same seed) over every dataset
and metric, and compares smrt's mean of the four metrics with SMOTE's per dataset.

usage: quality_summary.py RUN.json [BASELINE_DIR] [-v]
  BASELINE_DIR holds none.json, random.json and smote.json of the run's seed
  (default: ../shared/quality/baselines for seed 0).
  -v lists every dataset's difference to SMOTE.
"""
import json, sys, statistics as st
M = ["auc", "f1", "gmean", "bacc"]
def load(p):
    d = json.load(open(p)); out = {}; secs = 0.0
    for name, ds in d["datasets"].items():
        vals = {m: [] for m in M}
        for f in ds["folds"]:
            secs += f.get("balance_seconds") or 0
            for c, sc in f["scores"].items():
                for m in M: vals[m].append(sc[m])
        out[name] = {m: st.mean(v) for m, v in vals.items()}
    return out, secs
run, secs = load(sys.argv[1])
seed = json.load(open(sys.argv[1]))["seed"]
args = [a for a in sys.argv[1:] if a != "-v"]
here = __import__("os").path.dirname(__import__("os").path.abspath(__file__))
default = __import__("os").path.join(here, "..", "..", "shared", "quality", "baselines")
if len(args) < 2 and seed != 0:
    sys.exit(f"seed {seed}: give the folder of none/random/smote runs of that seed")
base = args[1] if len(args) > 1 else default
others = {n: load(f"{base}/{n}.json")[0] for n in ["none", "random", "smote"]}
ranks = []
diffs = {}
for ds in run:
    for m in M:
        vals = {n: others[n][ds][m] for n in others}; vals["smrt"] = run[ds][m]
        srt = sorted(vals.values(), reverse=True)
        r = {}
        for n, v in vals.items():
            pos = [i + 1 for i, x in enumerate(srt) if x == v]
            r[n] = sum(pos) / len(pos)
        ranks.append(r)
    diffs[ds] = st.mean(run[ds][m] - others["smote"][ds][m] for m in M)
avg = {n: st.mean(r[n] for r in ranks) for n in ranks[0]}
better = sum(1 for d in diffs.values() if d > 0)
worst = sorted(diffs.items(), key=lambda kv: kv[1])[:5]
print(f"{sys.argv[1]}: rank smrt {avg['smrt']:.2f} smote {avg['smote']:.2f} (gap {avg['smote']-avg['smrt']:+.2f}); "
      f"better on {better}/{len(diffs)}; below -0.01: {sum(1 for d in diffs.values() if d < -0.01)}; balance s {secs:.0f}")
print("   worst: " + ", ".join(f"{k} {v:+.3f}" for k, v in worst))
if "-v" in sys.argv:
    for k, v in sorted(diffs.items(), key=lambda kv: kv[1]): print(f"   {k:35s} {v:+.4f}")
