#!/usr/bin/env python3
"""Print (and optionally plot) an ayt run log.

    python scripts/read_run.py RUN_DIR/run.h5 [--plot out.png]

Prints the root attributes, each scalar's row count and last value, the histograms, sample
grids and eval metrics. With --plot, plots every scalar against kimg (needs matplotlib).
The file is opened read-only and closed again, so this can run while training writes.
"""
import argparse
import sys

import h5py
import numpy as np


def tables(group, prefix=""):
    """Yield (name, group) for every table (group with a 'step' dataset) below group."""
    for key, obj in group.items():
        if isinstance(obj, h5py.Group):
            name = f"{prefix}{key}"
            if "step" in obj:
                yield name, obj
            yield from tables(obj, name + "/")


def text(v):
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    return str(v)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_h5", help="path to run.h5")
    ap.add_argument("--plot", metavar="OUT.png", help="plot scalars vs kimg into this image")
    args = ap.parse_args()

    with h5py.File(args.run_h5, "r") as f:
        print(f"== {args.run_h5}")
        for k, v in f.attrs.items():
            s = text(v)
            if "\n" in s:
                s = s.strip().replace("\n", "\n    ")
                print(f"  {k}:\n    {s}")
            else:
                print(f"  {k}: {s}")

        scalars = {}
        if "scalars" in f:
            print("== scalars (rows, last step, last value)")
            for name, g in tables(f["scalars"]):
                n = len(g["step"])
                if n:
                    print(f"  {name:32s} {n:8d}  step {int(g['step'][-1]):>8d}  {float(g['value'][-1]):.6g}")
                else:
                    print(f"  {name:32s} {n:8d}")
                scalars[name] = (np.asarray(g["kimg"][:n]), np.asarray(g["value"][:n]))
        if "hist" in f:
            print("== histograms (rows, bins)")
            for name, g in tables(f["hist"]):
                print(f"  {name:32s} {len(g['step']):8d}  {g['counts'].shape[1]} bins")
        if "samples" in f and "images" in f["samples"]:
            imgs = f["samples/images"]
            print(f"== samples: {imgs.shape[0]} grids of {imgs.shape[1:]} (n, H, W, C)")
        if "eval" in f:
            print("== eval (rows, last value, attrs)")
            for name, g in tables(f["eval"]):
                n = len(g["step"])
                last = f"{float(g['value'][-1]):.6g}" if n else "-"
                attrs = ", ".join(f"{k}={text(v)}" for k, v in g.attrs.items())
                print(f"  {name:32s} {n:8d}  {last}  {attrs}")

    if args.plot:
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            sys.exit("--plot needs matplotlib: pip install -r scripts/requirements.txt")
        names = sorted(scalars)
        if not names:
            sys.exit("no scalars to plot")
        cols = min(3, len(names))
        rows = (len(names) + cols - 1) // cols
        fig, axes = plt.subplots(rows, cols, figsize=(4.5 * cols, 3 * rows), squeeze=False)
        for ax, name in zip(axes.flat, names):
            kimg, value = scalars[name]
            ax.plot(kimg, value, lw=1)
            ax.set_title(name, fontsize=9)
            ax.set_xlabel("kimg")
        for ax in list(axes.flat)[len(names):]:
            ax.axis("off")
        fig.tight_layout()
        fig.savefig(args.plot, dpi=100)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
