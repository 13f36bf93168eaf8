// Conversions between numpy arrays and the core's raw buffers, with shape errors a user can read.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <array>
#include <string>

#include "nanochart/box.h"
#include "nanochart/error.h"

namespace nanochart::bindings {

namespace py = pybind11;
using DoubleArray = py::array_t<double, py::array::c_style | py::array::forcecast>;

inline std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// Positions of one structure: (N, 3).
inline DoubleArray positions_array(const py::object& obj, const char* name = "positions") {
  DoubleArray a = DoubleArray::ensure(obj);
  if (!a) throw InputError(std::string(name) + " must be an array of numbers of shape (N, 3)");
  if (a.ndim() != 2 || a.shape(1) != 3) {
    throw InputError(std::string(name) + " must have shape (N, 3), got " + shape_of(a));
  }
  return a;
}

inline DoubleArray vector_array(const py::object& obj, py::ssize_t size, const char* name) {
  DoubleArray a = DoubleArray::ensure(obj);
  if (!a || a.ndim() != 1 || a.shape(0) != size) {
    throw InputError(std::string(name) + " must have shape (" + std::to_string(size) + ",)" +
                     (a ? ", got " + shape_of(a) : std::string()));
  }
  return a;
}

// None -> no box (cluster in vacuum); else a (3, 3) array whose rows are the cell vectors.
inline Box box_from(const py::object& obj) {
  if (obj.is_none()) return Box();
  DoubleArray a = DoubleArray::ensure(obj);
  if (!a || a.ndim() != 2 || a.shape(0) != 3 || a.shape(1) != 3) {
    throw InputError("box must be None or a (3, 3) array whose rows are the cell vectors" +
                     (a ? ", got shape " + shape_of(a) : std::string()));
  }
  std::array<double, 9> rows{};
  std::copy(a.data(), a.data() + 9, rows.begin());
  return Box(rows);
}

}  // namespace nanochart::bindings
