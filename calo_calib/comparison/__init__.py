"""Compare runs and sweeps: many runs -> one long table of binned σ_rel, a ranking, plots.

Every run is read from its ``metrics.json`` (see :func:`calo_calib.pipeline.evaluate_run`) into
one **long table** of flat records, one per (run, table, bin, method). One job per module:

- :mod:`~calo_calib.comparison.schema`: what metrics.json must hold, the one parser
  (:func:`~calo_calib.comparison.schema.run_from_metrics`) and the parsed run
  (:class:`~calo_calib.comparison.schema.RunResult`);
- :mod:`~calo_calib.comparison.loading`: the one reader of run directories
  (:func:`~calo_calib.comparison.loading.load_runs`) and of W&B runs
  (:func:`~calo_calib.comparison.loading.load_wandb`); unreadable ones are reported with the reason;
- :mod:`~calo_calib.comparison.table`: the long table (:func:`~calo_calib.comparison.table.build_table`),
  with the ratio to the BDT;
- :mod:`~calo_calib.comparison.ranking`: ranking by a metric, best configuration per bin;
- :mod:`~calo_calib.comparison.markdown`: the Markdown tables and report;
- :mod:`~calo_calib.comparison.plots`: σ_rel (or the median) vs E_true, |η|, ⟨μ⟩; best per bin;
- :mod:`~calo_calib.comparison.outputs`: CSV, report and PNGs written to a folder;
- :mod:`~calo_calib.comparison.cli`: ``python -m calo_calib.compare`` (argparse and ``main``).

See ``docs/comparing.md``.
"""
