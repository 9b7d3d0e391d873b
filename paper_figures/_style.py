"""Shared look and command line of the paper figures: palette, axes, caption, atomic PNG/PDF/CSV.

Okabe-Ito colours (distinguishable with every common colour-vision deficiency), one fixed colour and
marker per policy across figures, so a reader learns them once.
"""
from __future__ import annotations

import argparse
import sys
import textwrap
import time
from pathlib import Path
from typing import Callable

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from framework.errors import UserError, report  # noqa: E402
from framework.results import write_atomic, write_csv_atomic  # noqa: E402

OKABE_ITO = ["#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7", "#000000"]
_POLICY_COLOURS = {  # by variant name, then by policy name (the part before "_" options)
    "random": "#999999", "round_robin": "#000000", "p2c": "#CC79A7", "jsq": "#E69F00",
    "least_kv": "#56B4E9", "vllm": "#D55E00", "sglang_total_tokens": "#999999", "br0": "#0072B2",
    "brh_survival": "#009E73", "brh_empirical": "#009E73", "brh_oracle": "#D55E00",
    "brh_exact_match": "#F0E442", "brh_noisy_oracle": "#CC79A7", "brh_none": "#56B4E9", "brh": "#009E73",
    "optimum": "#000000",
}
MARKERS = "osD^vP*Xh"
PAPER_LABEL = "paper, 144-NPU testbed"
OURS_LABEL = "this simulator"


def colour(policy: str, i: int = 0) -> str:
    """The policy's colour (by its base name), else the i-th Okabe-Ito colour."""
    name = policy.split("[")[0].split(" ")[0].replace("_pool", "")
    for key in sorted(_POLICY_COLOURS, key=len, reverse=True):  # the longest name it starts with
        if name.startswith(key):
            return _POLICY_COLOURS[key]
    return OKABE_ITO[i % len(OKABE_ITO)]


def setup() -> None:
    plt.rcParams.update({
        "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "legend.fontsize": 8,
        "xtick.labelsize": 8, "ytick.labelsize": 8, "axes.spines.top": False, "axes.spines.right": False,
        "axes.grid": True, "grid.alpha": 0.3, "savefig.dpi": 110, "figure.dpi": 110,
        "pdf.fonttype": 42,
    })


def figure(ncols: int = 1, nrows: int = 1, width: float = 6.4, height: float = 3.6, **kw):
    setup()
    return plt.subplots(nrows, ncols, figsize=(width, height), layout="constrained", squeeze=False, **kw)


def caption(fig, text: str, width: int = 120) -> None:
    """A caption under the axes (wrapped; constrained layout keeps it clear of the tick labels)."""
    fig.supxlabel("\n".join(textwrap.wrap(text, width)), fontsize=7.5, color="#333333", x=0.01, ha="left")


def save(fig, table: pd.DataFrame, out: Path, name: str) -> list[Path]:
    """NAME.png, NAME.pdf, then NAME.csv (last: its presence means the figure is complete)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{name}.{e}" for e in ("png", "pdf", "csv")]
    for p, fmt in zip(paths[:2], ("png", "pdf")):
        write_atomic(p, lambda t, fmt=fmt: fig.savefig(t, format=fmt))
    write_csv_atomic(paths[2], table)
    plt.close(fig)
    return paths


def entry_point(module: str, name: str, doc: str, make: Callable[[argparse.Namespace], tuple]
                ) -> Callable[[list[str] | None], int]:
    """A figure module's ``main(argv)`` (``cli`` over its ``make``), run and exited on when the module is
    ``__main__``: the one entry point every figure shares, so each ends in one line, not a stub."""
    def main(argv: list[str] | None = None) -> int:
        return cli(name, doc, make, argv)

    if module == "__main__":
        raise SystemExit(main())
    return main


def cli(name: str, doc: str, make: Callable[[argparse.Namespace], tuple], argv: list[str] | None = None) -> int:
    """``python -m paper_figures.NAME [--quick] [--out DIR] [--sweep-dir DIR] [--jobs N] [--launcher L]``."""
    ap = argparse.ArgumentParser(prog=f"python -m paper_figures.{name}", description=doc,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small grid, about a minute (the tests' form)")
    ap.add_argument("--out", default="results/figures", help="where NAME.png/.pdf/.csv go")
    ap.add_argument("--sweep-dir", default=None,
                    help="where the runs go (default OUT/sweeps/NAME[-quick]); reused when rerun")
    ap.add_argument("--jobs", type=int, default=None, help="parallel runs (default: usable CPUs)")
    ap.add_argument("--launcher", default=None, help="hydra/launcher option (default joblib_local)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    a.sweep_dir = Path(a.sweep_dir) if a.sweep_dir else out / "sweeps" / (name + ("-quick" if a.quick else ""))
    t0 = time.perf_counter()
    try:
        fig, table = make(a)
    except UserError as e:
        return report(name, e)
    paths = save(fig, table, out, name)
    print(f"{name}: wrote {', '.join(str(p) for p in paths)} in {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    return 0
