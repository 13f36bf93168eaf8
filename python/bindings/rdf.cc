// nanochart._core: the RDF and its analytic backward pass.
#include "nanochart/rdf.h"

#include <string>
#include <vector>

#include "arrays.h"

namespace nanochart::bindings {
namespace {

// The C++ mirror of nanochart.core.rdf.RdfSettings, read from its attributes: the Python type is the
// one every caller builds, so the bindings take it whole instead of its fields one by one.
RdfSettings settings_from(const py::object& settings) {
  for (const char* name : {"r_min", "r_max", "n_bins", "sigma", "cutoff_sigmas", "length_unit"}) {
    if (!py::hasattr(settings, name)) {
      throw InputError(std::string("settings must be a nanochart RdfSettings; this object lacks ") + name);
    }
  }
  RdfSettings out;
  out.r_min = settings.attr("r_min").cast<double>();
  out.r_max = settings.attr("r_max").cast<double>();
  out.n_bins = settings.attr("n_bins").cast<int64_t>();
  out.sigma = settings.attr("sigma").cast<double>();
  out.cutoff_sigmas = settings.attr("cutoff_sigmas").cast<double>();
  out.length_unit = settings.attr("length_unit").cast<std::string>();
  return out;
}

}  // namespace

void bind_rdf(py::module_& m) {
  m.def(
      "rdf",
      [](const py::object& positions, const py::object& settings, const py::object& box, int rank, int size,
         int num_threads) {
        const Rdf rdf(settings_from(settings), num_threads);
        const int64_t n_bins = rdf.n_bins();
        DoubleArray x = positions_array(positions);
        const Box cell = box_from(box);
        DoubleArray g(n_bins);
        {
          py::gil_scoped_release release;
          rdf.compute(x.data(), x.shape(0), cell, g.mutable_data(), PairPartition{rank, size});
        }
        return g;
      },
      py::arg("positions"), py::arg("settings"), py::arg("box") = py::none(), py::kw_only(), py::arg("rank") = 0,
      py::arg("size") = 1, py::arg("num_threads") = 1,
      "Gaussian-smeared RDF of one structure (see nanochart.rdf); with rank/size, the share of the pairs\n"
      "that rank owns when the pair loop is split over `size` processes (the shares add up to the RDF);\n"
      "num_threads: threads of the core's pool for the pair loop (the result is the same for any).");

  m.def(
      "rdf_batch",
      [](const py::object& positions_batch, const py::object& settings, const py::object& box, int num_threads) {
        const Rdf rdf(settings_from(settings), num_threads);
        const int64_t n_bins = rdf.n_bins();
        DoubleArray x = DoubleArray::ensure(positions_batch);
        if (!x || x.ndim() != 3 || x.shape(2) != 3) {
          throw InputError("positions_batch must have shape (B, N, 3)" + (x ? ", got " + shape_of(x) : std::string()));
        }
        const Box cell = box_from(box);
        DoubleArray g({x.shape(0), py::ssize_t(n_bins)});
        {
          py::gil_scoped_release release;
          rdf.compute_batch(x.data(), x.shape(0), x.shape(1), cell, g.mutable_data());
        }
        return g;
      },
      py::arg("positions_batch"), py::arg("settings"), py::arg("box"), py::arg("num_threads"),
      "RDFs (B, n_bins) of a batch of structures (B, N, 3), in parallel over structures.");

  m.def(
      "rdf_backward",
      [](const py::object& positions, const py::object& dL_dg, const py::object& settings, const py::object& box,
         int rank, int size, bool recorded, int num_threads) {
        const Rdf rdf(settings_from(settings), num_threads);
        const int64_t n_bins = rdf.n_bins();
        DoubleArray x = positions_array(positions);
        DoubleArray w = vector_array(dL_dg, n_bins, "dL_dg");
        const Box cell = box_from(box);
        DoubleArray dL_dx({x.shape(0), py::ssize_t(3)});
        DoubleArray dL_dstrain({3, 3});
        {
          py::gil_scoped_release release;
          const PairPartition partition{rank, size};
          if (recorded) {  // the CV's path: a forward pass keeps the pairs, the backward pass reads them
            RdfRecord record;
            std::vector<double> g(static_cast<size_t>(n_bins));
            rdf.compute(x.data(), x.shape(0), cell, g.data(), partition, &record);
            if (record.empty()) throw InputError("too many pairs to record: " + std::to_string(x.shape(0)) + " atoms");
            rdf.backward(record, w.data(), dL_dx.mutable_data(), dL_dstrain.mutable_data());
          } else {
            rdf.backward(x.data(), x.shape(0), cell, w.data(), dL_dx.mutable_data(), dL_dstrain.mutable_data(),
                         partition);
          }
        }
        return py::make_tuple(dL_dx, dL_dstrain);
      },
      py::arg("positions"), py::arg("dL_dg"), py::arg("settings"), py::arg("box") = py::none(), py::kw_only(),
      py::arg("rank") = 0, py::arg("size") = 1, py::arg("recorded") = false, py::arg("num_threads") = 1,
      "Given dL/dg, return (dL/dx of shape (N, 3), dL/d(strain) of shape (3, 3)); rank/size as for rdf. "
      "recorded=True takes the CV's path: a forward pass keeps the pair record the backward pass reads.");
}

}  // namespace nanochart::bindings
