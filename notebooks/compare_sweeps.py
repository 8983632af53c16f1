# %% [markdown]
# # Compare sweeps
#
# Reads every run of one or more Hydra sweeps (e.g.
# `python -m calo_calib.run -m model=bdt,transformer loss=mse,huber particle=electron`) with
# `calo_calib.comparison`, the package behind `python -m calo_calib.compare` (see `docs/comparing.md`), and shows
#
# - the ranking of the configurations by inclusive σ_rel, with the ratio to the BDT;
# - σ_rel versus E_true, |η| and ⟨μ⟩ for every run, with σ_rel / σ_rel(BDT) underneath;
# - the best configuration in each (E_true, |η|) bin.
#
# Sweeps: the directories in `CALO_CALIB_SWEEPS` (colon-separated); by default the newest sweep under
# `runs/sweeps` (`$CALO_CALIB_RUNS/sweeps` when that is set). Run directories that cannot be read
# (failed jobs, broken metrics.json) are listed with the reason.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from calo_calib.comparison.loading import load_runs, newest_sweep
from calo_calib.comparison.markdown import best_per_bin_markdown, ranking_markdown
from calo_calib.comparison.plots import plot_best_per_bin, plot_vs
from calo_calib.comparison.table import build_table, particles

RUNS_ROOT = Path(os.environ.get("CALO_CALIB_RUNS", "../runs"))
if os.environ.get("CALO_CALIB_SWEEPS"):
    SWEEPS = [Path(p) for p in os.environ["CALO_CALIB_SWEEPS"].split(":") if p]
else:
    newest = newest_sweep(RUNS_ROOT / "sweeps")
    SWEEPS = [newest] if newest else []

loaded = load_runs(SWEEPS)
table = build_table(loaded.runs)
print(f"{len(loaded.runs)} runs read from {len(SWEEPS)} sweep(s): {', '.join(map(str, SWEEPS)) or 'none found'}")
for bad in loaded.unreadable:
    print(f"not read: {bad}")

# %% [markdown]
# ## Ranking
#
# Per particle, the runs sorted by the inclusive σ_rel of their own model. σ_rel / σ_rel(BDT) < 1 means
# better than the BDT on the same test clusters; the BDT is the run's joined one or a BDT run of the
# sweep(s) on the same test data (its error treats the two σ_rel as independent, so it is conservative).

# %%
for particle in particles(table):
    display(Markdown(ranking_markdown(table, particle)))

# %% [markdown]
# ## σ_rel versus E_true, |η| and ⟨μ⟩
#
# One series per configuration (the run's own model); the lower panels show the ratio to the BDT.
# Bins with too few test clusters (`evaluation.min_count`) are not drawn.

# %%
for particle in particles(table):
    for binned in ("vs_e", "vs_abs_eta", "vs_mu"):
        plot_vs(table, particle, binned)
        plt.show()

# %% [markdown]
# ## Best configuration per (E_true, |η|) bin
#
# Colour: the configuration with the smallest σ_rel in the bin; text: its σ_rel / σ_rel(BDT). The table
# gives the runner-up and the margin in units of the two σ_rel errors added in quadrature.

# %%
for particle in particles(table):
    plot_best_per_bin(table, particle)
    plt.show()
    display(Markdown(best_per_bin_markdown(table, particle)))
