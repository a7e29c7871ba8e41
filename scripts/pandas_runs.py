#!/usr/bin/env python3
"""Read ayt runs into pandas with h5py, and plot FD (or the loss) against kimg.

    python scripts/pandas_runs.py SWEEP_DIR [--plot fd.png]      # <home>/sweeps/<name>
    python scripts/pandas_runs.py RUN_DIR [RUN_DIR ...] [--plot loss.png]

A sweep's sweep.h5 is one row per member (name, status, run_dir, the swept fields as columns);
each run.h5 becomes one row per step with a column per scalar and per eval metric (eval/<name>).
"""
import argparse
import os

import h5py
import pandas as pd


def text(v):
    return v.decode() if isinstance(v, bytes) else v


def read_index(sweep_dir):
    """sweep.h5 as a DataFrame, one row per member, and the swept keys."""
    with h5py.File(os.path.join(sweep_dir, "sweep.h5"), "r") as f:
        df = pd.DataFrame({text(c): [text(v) for v in f[text(c)][:]] for c in f.attrs["columns"]})
        return df, [text(k) for k in f.attrs["keys"]]


def read_run(run_dir):
    """run.h5 as a DataFrame indexed by step: kimg, every scalar, every eval metric."""
    cols = {}
    with h5py.File(os.path.join(run_dir, "run.h5"), "r") as f:
        for top, prefix in (("scalars", ""), ("eval", "eval/")):
            def visit(name, obj):
                if isinstance(obj, h5py.Group) and "step" in obj:
                    cols[prefix + name] = pd.Series(obj["value"][:], index=obj["step"][:])
                    cols.setdefault("kimg", pd.Series(obj["kimg"][:], index=obj["step"][:]))
            if top in f:
                f[top].visititems(visit)
    return pd.DataFrame(cols).rename_axis("step").reset_index()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="+", help="a sweep folder, or run folders")
    ap.add_argument("--plot", metavar="OUT.png")
    args = ap.parse_args()

    if os.path.exists(os.path.join(args.paths[0], "sweep.h5")):
        index, keys = read_index(args.paths[0])
        print(index.drop(columns=["overrides", "error"]).to_string(index=False))
        runs = [read_run(r["run_dir"]).assign(run=r["name"], **{k: r[k] for k in keys})
                for _, r in index.iterrows() if os.path.exists(os.path.join(r["run_dir"], "run.h5"))]
    else:
        runs = [read_run(p).assign(run=os.path.basename(os.path.abspath(p))) for p in args.paths]
    df = pd.concat(runs, ignore_index=True)
    last = df.groupby("run").last(numeric_only=True)
    print(last[["kimg", "loss"] + [c for c in df if c.startswith("eval/fd_")]].to_string())

    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        y = "eval/fd_evalnet_1step" if "eval/fd_evalnet_1step" in df else "loss"
        panel = "train.batch_size" if "train.batch_size" in df else None
        groups = list(df.groupby(panel)) if panel else [("all", df)]
        fig, axes = plt.subplots(1, len(groups), figsize=(4 * len(groups), 3), sharey=True, squeeze=False)
        for ax, (value, part) in zip(axes[0], groups):
            for name, run in part.dropna(subset=[y]).groupby("run"):
                ax.plot(run["kimg"], run[y], marker=".", label=name.split("/")[-1])
            ax.set(title=f"{panel} = {value}" if panel else "", xlabel="kimg", ylabel=y)
            ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
