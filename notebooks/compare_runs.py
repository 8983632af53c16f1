# %% [markdown]
# # Compare calibration runs
#
# Reads every finished run below `RUNS_ROOT` (default `runs/`, or the `CALO_CALIB_RUNS`
# environment variable) from its own files (`metrics.json`) with the comparison's reader,
# `calo_calib.comparison.loading.load_runs` (run directories it cannot read are listed with the
# reason), prints the inclusive σ_rel table and plots σ_rel versus the true energy for each
# particle: raw cluster energy, every model and the oracle floor. Make runs first, e.g.
# `python -m calo_calib.run model=bdt particle=photon_conv` and `... model=transformer ...`.

# %%
import os
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

from calo_calib.comparison.loading import load_runs
from calo_calib.comparison.markdown import inclusive_table
from calo_calib.comparison.schema import sigma_vs
from calo_calib.plotting.style import label, use_style

RUNS_ROOT = Path(os.environ.get("CALO_CALIB_RUNS", "../runs"))
loaded = load_runs([RUNS_ROOT])
runs = sorted(loaded.runs, key=lambda r: r.created)  # oldest first
print(f"{len(runs)} finished runs under {RUNS_ROOT.resolve()}")
for bad in loaded.unreadable:
    print(f"not read: {bad}")

# %%
display(Markdown(inclusive_table(runs)))

# %% [markdown]
# σ_rel = IQR / (1.349 ⟨E_reco/E_true⟩) versus E_true, all |η| (crack excluded), one panel per particle.

# %%
use_style()
particles = sorted({r.particle for r in runs})
fig, axes = plt.subplots(1, max(1, len(particles)), figsize=(7 * max(1, len(particles)), 5.5), squeeze=False)
for ax, particle in zip(axes[0], particles):
    mine = [r for r in runs if r.particle == particle]
    for method, run in [("raw", mine[0]), *[(None, r) for r in mine], ("oracle", mine[0])]:
        s = sigma_vs(run, "vs_e", method)
        centre = (s["lo"] * s["hi"]) ** 0.5
        name = method or run.label
        ax.errorbar(centre, 100 * s["sigma_rel"], yerr=100 * s["err"], xerr=[centre - s["lo"], s["hi"] - centre],
                    fmt="o" if method is None else "s", label=name, mfc="none" if method else None)
    ax.set_xscale("log")
    ax.set_xlabel(r"$E_\mathrm{true}$ [GeV]")
    ax.set_ylabel(r"$\sigma_\mathrm{rel}$ [%]")
    ax.set_ylim(bottom=0)
    ax.legend(title=particle)
    label(ax)
plt.show()
