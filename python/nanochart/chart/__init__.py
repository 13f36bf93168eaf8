"""The chart of a data set (families, separation of labels) and projecting trajectories on it."""
