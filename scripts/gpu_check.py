#!/usr/bin/env python3
"""Reference figures for `smrt bench`, and the table that sets them side by side.

  gpu_check.py reference --out ref.json [--quick]   PyTorch (CUDA if present, else CPU) and
                                                     imbalanced-learn on the workloads of
                                                     `smrt bench`, under the same names
  gpu_check.py table smrt-cpu.json smrt-gpu.json ref.json
                                                     one Markdown table of every figure

The workloads mirror `smrt bench` (src/cli/bench.rs):
- matmul m x k x n: 10 products of float32 matrices, then one synchronisation; GFLOP/s = 2mkn/t.
- matmul 64x32x64, 10 one by one / in one batch: ten models' layer products, as ten launches or
  one batched product (`torch.bmm`; smrt's `MatMul::batch`).
- train R x 64 h H l16 b256 (2 epochs): a VAE with one sigmoid hidden layer of H units on each
  side, linear mean and log-variance heads, Bernoulli output (BCE with logits) + KL, Adam 1e-3,
  data uniform in [0, 1); rows/s over 2 epochs after one warm-up epoch, best of 2.
- generate N rows, decoder 16-128-64: ReLU decoder, standard-normal latents, rows copied to the
  host in chunks of 65,536; best of 2.
- smote T x 32 1:20 k5: imbalanced-learn's SMOTE on T rows (the minority, 1 in 21, shifted by 1),
  synthetic rows/s, best of 3, every core.
- smrt C x R x 32 classes (20 epochs): C VAEs fitted one after another as smrt's defaults shape
  them (ReLU hidden 64, latent 8, Gaussian output, beta 0.1, batch 32, Adam 3e-3), each on R rows
  for 20 epochs, then 9R rows drawn from each; training rows/s.
Missing torch or imbalanced-learn skips their figures with a note on stderr.
"""
import argparse
import json
import os
import sys
import time


def best(repeat, f):
    t = float("inf")
    for _ in range(repeat):
        s = time.perf_counter()
        f()
        t = min(t, time.perf_counter() - s)
    return t


def torch_figures(quick, push):
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        print("torch not found: no PyTorch figures", file=sys.stderr)
        return
    cuda = torch.cuda.is_available()
    dev = torch.device("cuda" if cuda else "cpu")
    engine = f"torch {torch.__version__} " + (
        f"cuda: {torch.cuda.get_device_name()}" if cuda else f"cpu ({torch.get_num_threads()} threads)"
    )
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    torch.backends.cuda.matmul.allow_tf32 = False  # plain fp32, as the WGSL kernels compute
    torch.manual_seed(0)
    scale = 10 if quick else 1

    shapes = [(256, w, w) for w in (64, 256, 1024)]
    if cuda and not quick:
        shapes.append((4096, 4096, 4096))
    for m, k, n in shapes:
        a = torch.full((m, k), 0.5, device=dev)
        b = torch.full((k, n), 0.25, device=dev)

        def products():
            for _ in range(10):
                torch.mm(a, b)
            sync()

        products()
        secs = best(5, products) / 10
        push(f"matmul {m}x{k}x{n}", engine, 2 * m * k * n / secs / 1e9, "GFLOP/s", secs)

    # Ten models' layer products (batch 64, 32 -> 64 units): ten launches, or one torch.bmm.
    a = torch.full((10, 64, 32), 0.5, device=dev)
    b = torch.full((10, 32, 64), 0.25, device=dev)

    def one_by_one():
        for _ in range(10):
            for i in range(10):
                torch.mm(a[i], b[i])
        sync()

    def batched():
        for _ in range(10):
            torch.bmm(a, b)
        sync()

    flops = 2 * 10 * 64 * 32 * 64
    for name, f in [("matmul 64x32x64, 10 one by one", one_by_one), ("matmul 64x32x64, 10 in one batch", batched)]:
        f()
        secs = best(5, f) / 10
        push(name, engine, flops / secs / 1e9, "GFLOP/s", secs)

    def mlp(sizes, act):
        layers = []
        for i, (p, q) in enumerate(zip(sizes, sizes[1:])):
            layers.append(torch.nn.Linear(p, q))
            if i < len(sizes) - 2:
                layers.append(act())
        return torch.nn.Sequential(*layers).to(dev)

    class Vae(torch.nn.Module):
        def __init__(self, d, hidden, latent, act):
            super().__init__()
            self.enc = mlp([d, hidden], act)
            self.act = act()
            self.head = torch.nn.Linear(hidden, 2 * latent).to(dev)
            self.dec = mlp([latent, hidden, d], act)

        def loss(self, x, bernoulli, beta):
            mu, logvar = self.head(self.act(self.enc(x))).chunk(2, dim=1)
            z = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)
            out = self.dec(z)
            if bernoulli:
                rec = F.binary_cross_entropy_with_logits(out, x, reduction="sum")
            else:
                rec = 0.5 * ((out - x) ** 2).sum()
            kl = -0.5 * (1 + logvar - mu**2 - logvar.exp()).sum()
            return (rec + beta * kl) / x.shape[0]

    def epochs(model, opt, x, batch, n, bernoulli, beta):
        for _ in range(n):
            perm = torch.randperm(x.shape[0], device=dev)
            for i in range(0, x.shape[0], batch):
                opt.zero_grad(set_to_none=True)
                model.loss(x[perm[i : i + batch]], bernoulli, beta).backward()
                opt.step()
        sync()

    rows = 10_000 // scale
    x = torch.rand(rows, 64, device=dev)
    for hidden in (128, 512):
        model = Vae(64, hidden, 16, torch.nn.Sigmoid)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        epochs(model, opt, x, 256, 1, True, 1.0)
        secs = best(2, lambda: epochs(model, opt, x, 256, 2, True, 1.0))
        push(f"train {rows}x64 h{hidden} l16 b256 (2 epochs)", engine, 2 * rows / secs, "rows/s", secs)

    dec = mlp([16, 128, 64], torch.nn.ReLU)
    n = 1_000_000 // scale

    @torch.no_grad()
    def generate(count, decoder, latent):
        out = []
        for i in range(0, count, 65_536):
            z = torch.randn(min(65_536, count - i), latent, device=dev)
            out.append(decoder(z).cpu())
        return torch.cat(out)

    generate(n, dec, 16)
    secs = best(2, lambda: generate(n, dec, 16))
    push(f"generate {n} rows, decoder 16-128-64", engine, n / secs, "rows/s", secs)

    cls = 1_000 // scale
    for classes in (1, 10):
        data = [torch.randn(cls, 32, device=dev) + c for c in range(classes)]

        def fit_all():
            for x in data:
                model = Vae(32, 64, 8, torch.nn.ReLU)
                opt = torch.optim.Adam(model.parameters(), lr=3e-3)
                epochs(model, opt, x, 32, 20, False, 0.1)
                generate(9 * cls, model.dec, 8)

        fit_all()
        secs = best(1, fit_all)
        push(f"smrt {classes} x {cls}x32 classes (20 epochs)", engine, classes * cls * 20 / secs, "rows/s", secs)


def smote_figures(quick, push):
    try:
        import imblearn
        import numpy as np
        from imblearn.over_sampling import SMOTE
    except Exception as e:  # a missing package, or one that does not import with this scikit-learn
        print(f"imbalanced-learn not usable ({e!r}): no SMOTE reference", file=sys.stderr)
        return
    total = 100_000 // (10 if quick else 1)
    minority = total // 21
    rng = np.random.default_rng(0)
    x = rng.standard_normal((total, 32), dtype=np.float32)
    x[:minority] += 1
    y = (np.arange(total) < minority).astype(np.int64)
    cores = os.cpu_count()
    engine = f"imbalanced-learn {imblearn.__version__} ({cores} cores)"
    SMOTE(k_neighbors=5, random_state=0).fit_resample(x, y)
    secs = best(3, lambda: SMOTE(k_neighbors=5, random_state=0).fit_resample(x, y))
    push(f"smote {total}x32 1:20 k5", engine, (total - 2 * minority) / secs, "synthetic rows/s", secs)


def reference(args):
    figures = []

    def push(bench, engine, value, unit, seconds):
        print(f"{bench:<44} {engine:<40} {value:>14.1f} {unit}", file=sys.stderr, flush=True)
        figures.append(dict(bench=bench, engine=engine, value=value, unit=unit, seconds=seconds))

    torch_figures(args.quick, push)
    smote_figures(args.quick, push)
    with open(args.out, "w") as f:
        json.dump({"figures": figures}, f, indent=1)


def table(args):
    """Rows: benches in smrt's order; columns: each engine; the last column the ratio of the
    fastest smrt engine to the reference (higher is better for smrt)."""
    smrt, ref = [], []
    for path in args.files:
        with open(path) as f:
            figs = json.load(f)["figures"]
        (ref if os.path.basename(path).startswith("ref") else smrt).extend(figs)
    engines = list(dict.fromkeys(f["engine"] for f in smrt + ref))
    benches = list(dict.fromkeys(f["bench"] for f in smrt + ref))
    value = {(f["bench"], f["engine"]): f for f in smrt + ref}
    print("| bench | unit | " + " | ".join(engines) + " | best smrt / reference |")
    print("|" + " --- |" * (len(engines) + 3))
    for b in benches:
        cells = [value.get((b, e)) for e in engines]
        unit = next(c["unit"] for c in cells if c)
        ours = [value[(b, e)]["value"] for e in engines if (b, e) in value and any(
            f["engine"] == e for f in smrt)]
        theirs = [value[(b, e)]["value"] for e in engines if (b, e) in value and any(
            f["engine"] == e for f in ref)]
        ratio = f"{max(ours) / max(theirs):.2f}x" if ours and theirs else ""
        text = [f"{c['value']:,.1f}" if c else "" for c in cells]
        print(f"| {b} | {unit} | " + " | ".join(text) + f" | {ratio} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("reference")
    r.add_argument("--out", required=True)
    r.add_argument("--quick", action="store_true")
    t = sub.add_parser("table")
    t.add_argument("files", nargs="+")
    args = ap.parse_args()
    reference(args) if args.cmd == "reference" else table(args)


if __name__ == "__main__":
    main()
