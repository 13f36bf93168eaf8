// A plain C++ float64 evaluator for nanochart's own encoder architecture, private to the core.
//
// libtorch spends most of a 147-atom CV call on per-operator dispatch and autograd bookkeeping:
// the encoder is a few hundred thousand multiply-adds, too small for its machinery. When a
// loaded module is a stack this file recognises (nanochart.model.encoder.ConvEncoder: per-bin
// standardisation, Conv1d / ReLU / SiLU / Softplus / BatchNorm1d (eval) layers, flatten, Linear),
// its weights are copied out and the forward pass and the vector-Jacobian product run here.
// Encoder verifies this evaluator against libtorch on load and falls back to libtorch for any
// other module or any disagreement, so libtorch stays the reference.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace torch::jit {
struct Module;
}

namespace nanochart {

class NativeEncoder {
 public:
  // The evaluator for `module` (float64, eval mode) with input width n_bins, or nullptr with
  // `why_not` saying which part of the module is not recognised (or that this CPU lacks AVX2).
  static std::unique_ptr<NativeEncoder> from_module(const torch::jit::Module& module, int64_t n_bins,
                                                    std::string& why_not);
  ~NativeEncoder();
  NativeEncoder(NativeEncoder&&) noexcept;

  int64_t n_bins() const { return n_bins_; }
  int64_t n_cvs() const { return n_cvs_; }

  // s (n_cvs) = f(g) for one RDF (n_bins). Thread-safe: scratch is per call. The larger
  // convolutions are shared by up to `threads` threads of the core's pool; the results do not
  // depend on the thread count, bit for bit.
  void evaluate(const double* g, double* s, int threads = 1) const;

  // As evaluate(), keeping what vjp() needs (the activations' inputs).
  void forward_recorded(const double* g, double* s, int threads = 1);
  bool recorded() const { return recorded_; }
  // dV_dg (n_bins) = (ds/dg)^T dV_ds for the last forward_recorded().
  void vjp(const double* dV_ds, double* dV_dg, int threads = 1) const;
  void release() { recorded_ = false; }

  struct Layer;  // one convolution, activation or affine (batch norm) layer, defined in the .cc

 private:
  NativeEncoder();
  // s = f(g), leaving every layer's input in activations (the last entry: the linear layer's);
  // `padded` is the convolutions' scratch. With `logistic_values`, each SiLU layer's logistic
  // values go to its entry, so that the VJP need not compute them again.
  void forward(const double* g, double* s, std::vector<std::vector<double>>& activations, std::vector<double>& padded,
               int threads, std::vector<std::vector<double>>* logistic_values = nullptr) const;

  int64_t n_bins_ = 0, n_cvs_ = 0;
  std::vector<double> input_mean_, input_scale_;
  std::vector<Layer> layers_;
  std::vector<double> linear_weight_;  // [n_cvs][length][channels], channels-last like the activations
  std::vector<double> linear_bias_;
  // Inputs of every layer of the last forward_recorded(), channels-last [length][channels].
  std::vector<std::vector<double>> recorded_activations_;
  std::vector<std::vector<double>> recorded_logistic_;  // per layer: a SiLU layer's s(x), else empty
  bool recorded_ = false;
  // Scratch of forward_recorded() and vjp(), kept between calls: allocating it on every call cost
  // about 3% of a values+forces call at N = 147.
  struct Scratch {
    std::vector<double> padded, grad, next;
    std::vector<std::vector<double>> padded_chunks;
  };
  mutable Scratch scratch_;
};

}  // namespace nanochart
