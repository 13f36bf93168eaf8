// nanochart._core: the collective variable (RDF + TorchScript encoder).
#include "nanochart/cv.h"

#include <pybind11/stl.h>

#include "arrays.h"

namespace nanochart::bindings {

void bind_cv(py::module_& m) {
  py::class_<CollectiveVariable>(m, "CollectiveVariable")
      .def(py::init([](const std::string& path, int num_threads, const std::string& engine) {
             CvOptions options;
             options.num_threads = num_threads;
             if (engine == "libtorch") {
               options.engine = EncoderEngine::kLibtorch;
             } else if (engine != "auto") {
               throw InputError("engine must be 'auto' or 'libtorch', got '" + engine + "'");
             }
             py::gil_scoped_release release;
             return std::make_unique<CollectiveVariable>(path, options);
           }),
           py::arg("path"), py::arg("num_threads") = 1, py::arg("engine") = "auto")
      .def_property_readonly("engine", &CollectiveVariable::engine)
      .def_property_readonly("metadata_json", [](const CollectiveVariable& cv) { return cv.metadata().json; })
      .def_property_readonly("cv_names", [](const CollectiveVariable& cv) { return cv.metadata().cv_names; })
      .def_property_readonly("n_atoms", [](const CollectiveVariable& cv) { return cv.metadata().n_atoms; })
      .def_property_readonly("n_bins", [](const CollectiveVariable& cv) { return cv.rdf().n_bins(); })
      .def_property_readonly("num_threads", &CollectiveVariable::num_threads)
      .def_property_readonly("has_novelty", &CollectiveVariable::has_novelty)
      .def(
          "novelty_scores",
          [](const CollectiveVariable& cv, const py::object& cvs) {
            const Novelty& novelty = cv.novelty();
            DoubleArray x = DoubleArray::ensure(cvs);
            if (!x || x.ndim() != 2 || x.shape(1) != novelty.n_cvs) {
              throw InputError("cvs must have shape (B, " + std::to_string(novelty.n_cvs) + ")" +
                               (x ? ", got " + shape_of(x) : std::string()));
            }
            DoubleArray out(x.shape(0));
            {
              py::gil_scoped_release release;
              novelty.scores(x.data(), x.shape(0), out.mutable_data());
            }
            return out;
          },
          py::arg("cvs"))
      .def(
          "compute",
          [](CollectiveVariable& cv, const py::object& positions, const py::object& box) {
            DoubleArray x = positions_array(positions);
            const Box cell = box_from(box);
            const py::ssize_t d = cv.n_cvs(), n = x.shape(0);
            DoubleArray values(d), jacobian({d, n, py::ssize_t(3)}),
                box_derivatives({d, py::ssize_t(3), py::ssize_t(3)});
            {
              py::gil_scoped_release release;
              cv.calculate(x.data(), n, cell, values.mutable_data(), true);
              cv.jacobian(jacobian.mutable_data(), box_derivatives.mutable_data());
            }
            return py::make_tuple(values, jacobian, box_derivatives);
          },
          py::arg("positions"), py::arg("box") = py::none())
      .def(
          "forces",
          [](CollectiveVariable& cv, const py::object& positions, const py::object& dV_ds, const py::object& box) {
            DoubleArray x = positions_array(positions);
            DoubleArray w = vector_array(dV_ds, cv.n_cvs(), "dV_ds");
            const Box cell = box_from(box);
            const py::ssize_t d = cv.n_cvs(), n = x.shape(0);
            DoubleArray values(d), forces({n, py::ssize_t(3)}), virial({3, 3});
            {
              py::gil_scoped_release release;
              cv.calculate(x.data(), n, cell, values.mutable_data(), true);
              cv.apply_bias(w.data(), forces.mutable_data(), virial.mutable_data());
            }
            return py::make_tuple(forces, virial);
          },
          py::arg("positions"), py::arg("dV_ds"), py::arg("box") = py::none())
      .def(
          "values",
          [](CollectiveVariable& cv, const py::object& positions_batch, const py::object& box) {
            DoubleArray x = DoubleArray::ensure(positions_batch);
            if (!x || x.ndim() != 3 || x.shape(2) != 3) {
              throw InputError("positions_batch must have shape (B, N, 3)" +
                               (x ? ", got " + shape_of(x) : std::string()));
            }
            const Box cell = box_from(box);
            DoubleArray out({x.shape(0), py::ssize_t(cv.n_cvs())});
            {
              py::gil_scoped_release release;
              cv.values(x.data(), x.shape(0), x.shape(1), cell, out.mutable_data());
            }
            return out;
          },
          py::arg("positions_batch"), py::arg("box") = py::none());
}

}  // namespace nanochart::bindings
