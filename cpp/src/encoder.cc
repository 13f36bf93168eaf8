#include "nanochart/encoder.h"

#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Parallel.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <sstream>
#include <vector>

#include "nanochart/error.h"
#include "native_encoder.h"

namespace nanochart {
namespace {

constexpr const char* kMetadataFile = "nanochart.json";

// libtorch error texts carry a C++ backtrace after the first lines; keep what a user can read.
std::string short_message(const std::exception& e) {
  std::string text = e.what();
  std::istringstream lines(text);
  std::string line, out;
  int kept = 0;
  while (std::getline(lines, line) && kept < 4) {
    if (line.find("Exception raised from") != std::string::npos) break;
    if (line.empty()) continue;
    out += (kept ? " | " : "") + line;
    ++kept;
  }
  return out.empty() ? text : out;
}

torch::Tensor blob(const double* data, int64_t rows, int64_t cols) {
  return torch::from_blob(const_cast<double*>(data), {rows, cols}, torch::kFloat64);
}

}  // namespace

struct Encoder::Impl {
  std::string path;
  torch::jit::Module module;
  ModelMetadata metadata;
  int64_t n_cvs = 0;
  torch::Tensor recorded_input;
  torch::Tensor recorded_output;
  std::unique_ptr<NativeEncoder> native;  // set when the core's evaluator replaces libtorch
  std::string engine = "libtorch";

  // Takes the core's own evaluator if it recognises the module and agrees with libtorch on
  // inputs like those the model was trained on; otherwise libtorch stays, and engine says why.
  void try_native();

  torch::Tensor run(const torch::Tensor& g) {
    // The profiling executor's graph rewrites cost more than they save on a model this small;
    // the guard is thread-local, so other TorchScript work in the process is unaffected.
    torch::jit::GraphOptimizerEnabledGuard plain_executor(false);
    torch::IValue result;
    try {
      result = module.forward({g});
    } catch (const std::exception& e) {
      throw ModelError("the model '" + path + "' failed on an input of shape [" + std::to_string(g.size(0)) + ", " +
                       std::to_string(g.size(1)) + "]: " + short_message(e));
    }
    if (!result.isTensor()) {
      throw ModelError("the model '" + path + "' must return one tensor of shape [batch, n_cvs], got " +
                       result.tagKind());
    }
    torch::Tensor s = result.toTensor();
    if (s.dim() != 2 || s.size(0) != g.size(0) || s.size(1) != n_cvs) {
      std::ostringstream shape;
      shape << s.sizes();
      throw ModelError("the model '" + path + "' returned shape " + shape.str() + " for a batch of " +
                       std::to_string(g.size(0)) + "; expected [batch, " + std::to_string(n_cvs) +
                       "] (one column per name in cv_names)");
    }
    return s.to(torch::kFloat64).contiguous();
  }
};

Encoder::Encoder(const std::string& path, EncoderEngine engine) : impl_(std::make_unique<Impl>()) {
  impl_->path = path;
  if (!std::ifstream(path, std::ios::binary).good()) {
    throw FileError("cannot open model file '" + path + "': no such file or not readable");
  }
  torch::jit::ExtraFilesMap extra{{kMetadataFile, ""}};
  try {
    impl_->module = torch::jit::load(path, torch::kCPU, extra);
  } catch (const std::exception& e) {
    throw ModelError("'" + path + "' is not a readable TorchScript file (" + short_message(e) +
                     "); export models with nanochart's exporter or torch.jit.save");
  }
  if (extra[kMetadataFile].empty()) {
    throw ModelError("'" + path +
                     "' is a TorchScript file without nanochart.json metadata; save it with "
                     "torch.jit.save(module, path, _extra_files={'nanochart.json': ...}) or nanochart's exporter");
  }
  impl_->metadata = ModelMetadata::from_json(extra[kMetadataFile]);
  impl_->n_cvs = static_cast<int64_t>(impl_->metadata.cv_names.size());

  try {
    impl_->module.eval();
    impl_->module.to(torch::kFloat64);
    // Only the input gradient is ever needed: without this, every backward pass would also
    // compute the gradients of all weights.
    for (auto parameter : impl_->module.parameters()) parameter.requires_grad_(false);
  } catch (const std::exception& e) {
    throw ModelError("cannot convert the model '" + path + "' to float64: " + short_message(e));
  }
  // No torch::jit::freeze here, though it would fold batch norms into the convolutions: it
  // also deletes detach() calls, which would change the forces of a model that detaches on purpose.

  // Probe: the input width must be n_bins and the output must depend differentiably on it.
  const int64_t m = impl_->metadata.rdf.n_bins;
  c10::InferenceMode not_inference(false);
  torch::AutoGradMode grad_mode(true);
  auto probe = torch::full({2, m}, 1.0 / static_cast<double>(m), torch::kFloat64).requires_grad_(true);
  torch::Tensor s;
  try {
    s = impl_->run(probe);
  } catch (const ModelError& e) {
    throw ModelError(std::string(e.what()) + " (metadata says rdf.n_bins = " + std::to_string(m) +
                     ": the model's input width must match it)");
  }
  if (!torch::isfinite(s).all().item<bool>()) {
    throw ModelError("the model '" + path +
                     "' gives NaN or infinite CVs for a flat RDF: its weights or its input standardisation "
                     "hold NaN or infinite values (re-export it from a trained encoder)");
  }
  if (!s.requires_grad()) {
    throw ModelError("the output of the model '" + path +
                     "' does not depend differentiably on its input, so it cannot give forces");
  }
  if (engine == EncoderEngine::kAuto) {
    impl_->try_native();
  } else {
    impl_->engine = "libtorch (requested)";
  }
}

void Encoder::Impl::try_native() {
  const int64_t m = metadata.rdf.n_bins;
  std::string why_not;
  std::unique_ptr<NativeEncoder> candidate = NativeEncoder::from_module(module, m, why_not);
  if (!candidate || candidate->n_cvs() != n_cvs) {
    engine = "libtorch (" + (candidate ? "the linear layer's width differs from cv_names" : why_not) + ")";
    return;
  }
  // Inputs spread like the training RDFs (the module's own standardisation), a fixed seed, and
  // random CV weights for the vector-Jacobian products.
  auto generator = at::make_generator<at::CPUGeneratorImpl>(20231121);
  const int64_t probes = 4;
  torch::Tensor mean = module.attr("input_mean").toTensor().to(torch::kFloat64);
  torch::Tensor scale = module.attr("input_scale").toTensor().to(torch::kFloat64);
  torch::Tensor g = (mean + scale * at::randn({probes, m}, generator, torch::kFloat64)).contiguous();
  torch::Tensor weights = at::randn({probes, n_cvs}, generator, torch::kFloat64).contiguous();
  // max |a - b| / max |b|, infinite where either holds NaN or inf (std::max would drop a NaN and
  // call the two equal).
  const auto relative = [](const double* a, const double* b, int64_t n) {
    double diff = 0.0, size = 1e-300;
    for (int64_t k = 0; k < n; ++k) {
      if (!std::isfinite(a[k]) || !std::isfinite(b[k])) return std::numeric_limits<double>::infinity();
      diff = std::max(diff, std::abs(a[k] - b[k]));
      size = std::max(size, std::abs(b[k]));
    }
    return diff / size;
  };
  double worst = 0.0;
  for (int64_t p = 0; p < probes; ++p) {
    c10::InferenceMode not_inference(false);
    torch::AutoGradMode grad_mode(true);
    torch::Tensor input = g.slice(0, p, p + 1).clone().requires_grad_(true);
    torch::Tensor s_ref = run(input);
    torch::Tensor dg_ref = torch::autograd::grad({s_ref}, {input}, {weights.slice(0, p, p + 1)})[0].contiguous();
    std::vector<double> s(static_cast<size_t>(n_cvs)), dg(static_cast<size_t>(m));
    candidate->forward_recorded(g.data_ptr<double>() + p * m, s.data());
    candidate->vjp(weights.data_ptr<double>() + p * n_cvs, dg.data());
    worst = std::max({worst, relative(s.data(), s_ref.detach().data_ptr<double>(), n_cvs),
                      relative(dg.data(), dg_ref.data_ptr<double>(), m)});
  }
  candidate->release();
  // Summation order alone moves results by ~1e-15; anything near 1e-9 is a different function.
  if (!(worst <= 1e-9)) {
    std::ostringstream text;
    text << "libtorch (the core's evaluator differs from the module by " << worst << " relative)";
    engine = text.str();
    return;
  }
  native = std::move(candidate);
  std::ostringstream text;
  text << "native (nanochart.model.encoder.ConvEncoder; matches libtorch to " << worst << " relative)";
  engine = text.str();
}

Encoder::~Encoder() = default;
Encoder::Encoder(Encoder&&) noexcept = default;
Encoder& Encoder::operator=(Encoder&&) noexcept = default;

const ModelMetadata& Encoder::metadata() const { return impl_->metadata; }
int64_t Encoder::n_cvs() const { return impl_->n_cvs; }
int64_t Encoder::n_bins() const { return impl_->metadata.rdf.n_bins; }
const std::string& Encoder::engine() const { return impl_->engine; }

void Encoder::evaluate(const double* g, int64_t batch, double* s) const {
  if (impl_->native) {
    const int64_t m = n_bins(), d = impl_->n_cvs;
    // One structure: its convolutions share the threads; several: the structures do.
    const int threads = batch == 1 ? at::get_num_threads() : 1;
    at::parallel_for(0, batch, 1, [&](int64_t begin, int64_t end) {
      for (int64_t b = begin; b < end; ++b) impl_->native->evaluate(g + b * m, s + b * d, threads);
    });
    return;
  }
  c10::InferenceMode inference;
  torch::Tensor out = impl_->run(blob(g, batch, n_bins()));
  std::memcpy(s, out.data_ptr<double>(), sizeof(double) * static_cast<size_t>(batch * impl_->n_cvs));
}

void Encoder::forward_recorded(const double* g, double* s) {
  if (impl_->native) {
    impl_->native->forward_recorded(g, s, at::get_num_threads());
    return;
  }
  // Grad mode is thread-local: a Python caller inside torch.no_grad() must not turn it off here.
  c10::InferenceMode not_inference(false);
  torch::AutoGradMode grad_mode(true);
  impl_->recorded_input = blob(g, 1, n_bins()).clone().requires_grad_(true);
  impl_->recorded_output = impl_->run(impl_->recorded_input);
  std::memcpy(s, impl_->recorded_output.data_ptr<double>(), sizeof(double) * static_cast<size_t>(impl_->n_cvs));
}

void Encoder::vjp(const double* dV_ds, double* dV_dg, bool keep_graph) {
  if (impl_->native && impl_->native->recorded()) {
    impl_->native->vjp(dV_ds, dV_dg, at::get_num_threads());
    if (!keep_graph) impl_->native->release();
    return;
  }
  if (!impl_->recorded_output.defined()) {
    throw Error("Encoder::vjp needs a forward_recorded() first (the graph was released or never recorded)");
  }
  c10::InferenceMode not_inference(false);
  torch::AutoGradMode grad_mode(true);
  torch::Tensor weights = blob(dV_ds, 1, impl_->n_cvs).clone();
  std::vector<torch::Tensor> grads;
  try {
    grads = torch::autograd::grad({impl_->recorded_output}, {impl_->recorded_input}, {weights},
                                  /*retain_graph=*/keep_graph, /*create_graph=*/false, /*allow_unused=*/true);
  } catch (const std::exception& e) {
    throw ModelError("the backward pass through the model '" + impl_->path + "' failed: " + short_message(e));
  }
  if (!grads[0].defined()) {
    std::memset(dV_dg, 0, sizeof(double) * static_cast<size_t>(n_bins()));
  } else {
    torch::Tensor dense = grads[0].contiguous();
    std::memcpy(dV_dg, dense.data_ptr<double>(), sizeof(double) * static_cast<size_t>(n_bins()));
  }
  if (!keep_graph) {
    impl_->recorded_output = torch::Tensor();
    impl_->recorded_input = torch::Tensor();
  }
}

}  // namespace nanochart
