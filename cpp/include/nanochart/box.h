// Periodic simulation cell and the minimum-image convention.
#pragma once

#include <array>

namespace nanochart {

// A simulation cell whose rows are the cell vectors (ASE's `atoms.cell`, PLUMED's Pbc).
// A default-constructed Box is no box at all: a cluster in vacuum, distances taken as they are.
class Box {
 public:
  Box() = default;
  // Throws InputError when the rows are not finite or do not span 3D space.
  explicit Box(const std::array<double, 9>& rows);

  bool periodic() const { return periodic_; }
  // Periodic with the cell vectors along x, y and z.
  bool orthorhombic() const { return orthorhombic_; }
  const std::array<double, 9>& rows() const { return h_; }

  // Replaces the separation vector d by its shortest periodic image. Exact for orthorhombic
  // cells; for triclinic cells the 27 neighbouring images of the wrapped vector are searched,
  // which is exact for any cell that is not pathologically skewed (as in PLUMED's Pbc).
  void minimum_image(double d[3]) const;

 private:
  bool periodic_ = false;
  bool orthorhombic_ = false;
  std::array<double, 9> h_{};
  std::array<double, 9> inverse_{};
  // A wrapped vector shorter than this is certainly the shortest image (half the smallest
  // distance between lattice planes), so the 27-image search can be skipped.
  double safe_radius_squared_ = 0.0;
};

}  // namespace nanochart
