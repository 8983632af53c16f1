"""A library of minimum-bias events from Pythia8, generated once and cached under ``data/``.

Pile-up clusters reuse its events with random phi rotations and eta reflections
(:mod:`calo_calib.simulation.pileup`). Generation: ``SoftQCD:inelastic = on`` at sqrt(s) = 13.6 TeV
(the Run-3 energy), particles with c tau > 10 mm stable (``ParticleDecays:limitTau0``, the usual
generator/detector boundary), final-state particles with |eta| < ``MAX_ABS_ETA`` kept if they can
make a signal in the EM calorimeter:

* photons and electrons (kind 0 and 1): electromagnetic showers;
* charged hadrons and muons (kind 2): treated as minimum-ionising tracks (docs/simulation.md says
  what this leaves out: nuclear interactions of the ~60 % of hadrons that interact in 22 X0 of
  Pb/LAr, which deposit more energy, deeper);
* neutral hadrons (n, K0_L, K0_S, Lambda) are dropped (little EM-calorimeter signal; K0_S -> pi0 pi0
  photons are lost with them, about 1 % of the photons).

The cache file name carries the settings (events, seed, sqrt(s)), so a changed setting regenerates;
a missing or unreadable file is regenerated, written under a temporary name and renamed.
"""

from __future__ import annotations

import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from calo_calib.paths import REPO_ROOT

MAX_ABS_ETA = 3.0
KIND_PHOTON, KIND_ELECTRON, KIND_CHARGED = 0, 1, 2
_NEUTRAL_HADRONS = {130, 310, 2112, 3122, 3212, 3322}


def cache_dir() -> Path:
    """Where libraries are cached: ``$CALO_CALIB_MINBIAS_DIR`` or ``<repo>/data/minbias``."""
    return Path(os.environ.get("CALO_CALIB_MINBIAS_DIR", REPO_ROOT / "data" / "minbias"))


@dataclass(frozen=True)
class MinBiasLibrary:
    """Final-state particles of ``n_events`` minimum-bias events, flat arrays of length n.

    ``event`` (n,) int32 event index (sorted); ``kind`` (n,) int8 (0 photon, 1 electron, 2 charged
    hadron or muon); ``charge`` (n,) int8; ``pt`` GeV, ``eta``, ``phi`` rad: (n,) float32.
    """

    n_events: int
    event: np.ndarray
    kind: np.ndarray
    charge: np.ndarray
    pt: np.ndarray
    eta: np.ndarray
    phi: np.ndarray
    seconds: float  # generation time (wall, one core)

    @property
    def energy(self) -> np.ndarray:
        """(n,) GeV (massless approximation; the hadron masses do not matter for a MIP)."""
        return self.pt * np.cosh(self.eta)


def _pythia(seed: int, sqrt_s_gev: float):
    import pythia8mc

    py = pythia8mc.Pythia("", False)
    for line in (
        "SoftQCD:inelastic = on",
        f"Beams:eCM = {sqrt_s_gev:.1f}",
        "ParticleDecays:limitTau0 = on",
        "ParticleDecays:tau0Max = 10.",
        "Random:setSeed = on",
        f"Random:seed = {int(seed) % 900_000_000 + 1}",
        "Print:quiet = on",
        "Next:numberCount = 0",
    ):
        py.readString(line)
    if not py.init():
        raise RuntimeError("Pythia8 initialisation failed for the minimum-bias library")
    return py


def generate(n_events: int, seed: int, sqrt_s_gev: float, progress: bool = True) -> MinBiasLibrary:
    """Generate the library with Pythia8 (about 230 events/s on one core, ~75 particles each)."""
    from tqdm import tqdm

    py = _pythia(seed, sqrt_s_gev)
    cols: dict[str, list] = {k: [] for k in ("event", "kind", "charge", "pt", "eta", "phi")}
    t0 = time.perf_counter()
    done = 0
    bar = tqdm(total=n_events, desc="minimum-bias library (Pythia8)", unit="ev", disable=not progress, mininterval=2)
    while done < n_events:
        if not py.next():
            continue
        ev = py.event
        for i in range(ev.size()):
            p = ev[i]
            if not p.isFinal():
                continue
            pid = abs(p.id())
            if pid in _NEUTRAL_HADRONS:
                continue
            charge = int(round(p.charge()))
            if pid == 22:
                kind = KIND_PHOTON
            elif pid == 11:
                kind = KIND_ELECTRON
            elif charge != 0:
                kind = KIND_CHARGED
            else:
                continue  # neutrinos, other neutrals
            eta = p.eta()
            if abs(eta) >= MAX_ABS_ETA:
                continue
            cols["event"].append(done)
            cols["kind"].append(kind)
            cols["charge"].append(charge)
            cols["pt"].append(p.pT())
            cols["eta"].append(eta)
            cols["phi"].append(p.phi())
        done += 1
        bar.update(1)
    bar.close()
    seconds = time.perf_counter() - t0
    return MinBiasLibrary(
        n_events,
        np.asarray(cols["event"], np.int32),
        np.asarray(cols["kind"], np.int8),
        np.asarray(cols["charge"], np.int8),
        np.asarray(cols["pt"], np.float32),
        np.asarray(cols["eta"], np.float32),
        np.asarray(cols["phi"], np.float32),
        seconds,
    )


def cache_path(n_events: int, seed: int, sqrt_s_gev: float) -> Path:
    return cache_dir() / f"pythia8_softqcd_{sqrt_s_gev / 1000:g}TeV_{n_events}ev_seed{seed}.npz"


def _save(lib: MinBiasLibrary, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp.npz")
    try:
        np.savez(
            tmp, n_events=lib.n_events, event=lib.event, kind=lib.kind, charge=lib.charge, pt=lib.pt,
            eta=lib.eta, phi=lib.phi, seconds=lib.seconds,
        )  # fmt: skip
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _load(path: Path) -> MinBiasLibrary:
    with np.load(path) as z:
        return MinBiasLibrary(
            int(z["n_events"]), z["event"], z["kind"], z["charge"], z["pt"], z["eta"], z["phi"], float(z["seconds"])
        )


_MEMORY: dict[Path, MinBiasLibrary] = {}


def _generate_locked(path: Path, n_events: int, seed: int, sqrt_s_gev: float, progress: bool) -> MinBiasLibrary:
    """Generate under an exclusive file lock: parallel workers or jobs generate it once, not each."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.is_file():  # another process finished it while we waited
            try:
                return _load(path)
            except Exception:
                pass
        print(f"[minbias] generating {n_events} Pythia8 minimum-bias events -> {path}", flush=True)
        lib = generate(n_events, seed, sqrt_s_gev, progress)
        _save(lib, path)
        print(f"[minbias] {lib.event.size} particles in {lib.seconds:.0f} s", flush=True)
        return lib


def load_or_generate(n_events: int, seed: int, sqrt_s_gev: float, progress: bool = True) -> MinBiasLibrary:
    """The cached library for these settings; generated (and cached) when missing or unreadable."""
    path = cache_path(n_events, seed, sqrt_s_gev)
    if path in _MEMORY:
        return _MEMORY[path]
    lib = None
    if path.is_file():
        try:
            lib = _load(path)
        except Exception as err:  # a truncated or foreign file: regenerate, say so
            print(
                f"[minbias] cached library {path} is unreadable ({type(err).__name__}: {err}); regenerating", flush=True
            )
    if lib is None:
        lib = _generate_locked(path, n_events, seed, sqrt_s_gev, progress)
    _MEMORY[path] = lib
    return lib
