"""Input/output: the cluster data format and Parquet reading/writing."""
