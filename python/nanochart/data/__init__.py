"""Data sets of cluster structures: reading and checking them (:mod:`.structures`), seed motifs
(:mod:`.motifs`), CNA labels (:mod:`.cna`) and `nanochart generate` (:mod:`.sampling`: LAMMPS MD,
quench, deduplication, resume)."""
