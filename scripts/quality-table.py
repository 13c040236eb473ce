#!/usr/bin/env python3
"""Markdown tables of docs/quality.md from the eval.json files of scripts/quality-evals.sh.

usage: scripts/quality-table.py OUT   (the folder given to quality-evals.sh)
"""
import json
import sys
from pathlib import Path

out = Path(sys.argv[1])


def load(name):
    f = out / name / "eval.json"
    return json.loads(f.read_text()) if f.exists() else None


rows = [("shipped model", "shipped", "shipped-div"), ("`make demo-train` (300 it.)", "demo-train", "demo-train-div"),
        ("identity baseline", "identity", None), ("real floor / ceiling", "real", None)]
cols = [("FID lat.", "FID_latent/mean", 1), ("FID ref.", "FID_reference/mean", 1),
        ("ACC lat.", "ACC_latent/mean", 3), ("ACC ref.", "ACC_reference/mean", 3),
        ("paired LPIPS", "paired_LPIPS/mean", 3), ("paired L1", "paired_L1/mean", 3)]


def fmt(v, d):
    return "–" if v is None else f"{v:.{d}f}"


print("| | " + " | ".join(c for c, _, _ in cols) + " | LPIPS div. lat. | LPIPS div. ref. |")
print("|---" * (len(cols) + 3) + "|")
for label, main, div in rows:
    e = load(main)
    if e is None:
        continue
    dv = load(div) if div else None
    cells = [fmt(e.get(k), d) for _, k, d in cols]
    cells += [fmt(dv.get("LPIPS_latent/mean") if dv else None, 3), fmt(dv.get("LPIPS_reference/mean") if dv else None, 3)]
    print(f"| {label} | " + " | ".join(cells) + " |")

ship, real, ident = load("shipped"), load("real"), load("identity")
if ship and real:
    print()
    tasks = sorted(k.split("/", 1)[1] for k in ship if k.startswith("FID_latent/") and not k.endswith("/mean"))
    print("| task | FID lat. | FID ref. | identity FID | ACC ref. | real ACC | ACC ref. ÷ real | paired LPIPS | identity paired LPIPS |")
    print("|---" * 9 + "|")
    ratios = []
    for t in tasks + ["mean"]:
        r = ship[f"ACC_reference/{t}"] / real[f"ACC_reference/{t}"] if real[f"ACC_reference/{t}"] else float("nan")
        if t != "mean":
            ratios.append(r)
        cells = [fmt(ship.get(f"FID_latent/{t}"), 1), fmt(ship.get(f"FID_reference/{t}"), 1),
                 fmt(ident.get(f"FID_reference/{t}") if ident else None, 1),
                 fmt(ship.get(f"ACC_reference/{t}"), 3), fmt(real.get(f"ACC_reference/{t}"), 3), f"{r:.0%}",
                 fmt(ship.get(f"paired_LPIPS/{t}"), 3), fmt(ident.get(f"paired_LPIPS/{t}") if ident else None, 3)]
        print(f"| {'**mean**' if t == 'mean' else t} | " + " | ".join(cells) + " |")
    print()
    print(f"Lowest task ratio: {min(ratios):.0%}; mean ratio: "
          f"{ship['ACC_reference/mean'] / real['ACC_reference/mean']:.0%}.")
