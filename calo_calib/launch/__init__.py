"""Running many calibration jobs: local GPU scheduling under torchrun, SLURM via submitit."""
