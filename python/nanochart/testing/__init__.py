"""Independent references for tests and benchmarks only. Nothing here is used to featurise data."""
