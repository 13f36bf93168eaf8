"""Molecular dynamics along the chart: LAMMPS sessions, PLUMED inputs and installs, biased MD,
and the analysis of biased runs (motif paths, reweighted free energies, WHAM)."""
