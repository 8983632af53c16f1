"""Z -> ee standard candle: generator, simulated samples, m_ee peak fits and in-situ energy-scale factors.

See ``docs/zee.md``; the experiment is :func:`calo_calib.zee.candle.run_candle`
(``python -m calo_calib.studies.zee_candle``).
"""
