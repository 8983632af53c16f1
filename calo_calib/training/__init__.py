"""Training of the network calibrations: losses, checkpoints, distributed set-up, the loop."""
