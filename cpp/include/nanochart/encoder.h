// Runs an exported TorchScript encoder: g (the RDF, n_bins values) -> s (n_cvs CVs), and the
// vector-Jacobian product dV/dg = (ds/dg)^T dV/ds through libtorch autograd, or through the
// core's own evaluator when the module is nanochart's encoder architecture and the evaluator
// agrees with libtorch on load (several times faster for one structure).
//
// Loading a model and vjp() may run libtorch autograd, which refuses to run on a thread holding
// Python's GIL once torch's Python module is imported: callers inside a Python process release it
// first (the Python bindings and the PLUMED action do).
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "nanochart/metadata.h"

namespace nanochart {

// Who evaluates the encoder: kAuto takes the core's own evaluator where it applies, kLibtorch
// always runs the TorchScript module through libtorch.
enum class EncoderEngine { kAuto, kLibtorch };

class Encoder {
 public:
  // Loads the TorchScript file and its `nanochart.json`, converts the module to float64 in eval
  // mode, and probes it once so that a model breaking the contract fails here, with a message,
  // instead of in the middle of an MD run. Throws FileError or ModelError.
  explicit Encoder(const std::string& path, EncoderEngine engine = EncoderEngine::kAuto);
  ~Encoder();
  Encoder(Encoder&&) noexcept;
  Encoder& operator=(Encoder&&) noexcept;

  const ModelMetadata& metadata() const;
  int64_t n_cvs() const;
  int64_t n_bins() const;
  // "native" or "libtorch", and why (for logs): e.g. "libtorch (requested)".
  const std::string& engine() const;

  // s = f(g) for a batch (batch x n_bins in, batch x n_cvs out), recording no autograd graph.
  void evaluate(const double* g, int64_t batch, double* s) const;

  // s = f(g) for one RDF, keeping the graph for the vjp() calls that follow.
  void forward_recorded(const double* g, double* s);

  // dV_dg = (ds/dg)^T dV_ds for the last forward_recorded(). keep_graph allows another vjp()
  // on the same forward (used for the full Jacobian); otherwise the graph is released.
  void vjp(const double* dV_ds, double* dV_dg, bool keep_graph = false);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace nanochart
