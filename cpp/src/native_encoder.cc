#include "native_encoder.h"

#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "vector_math.h"

namespace nanochart {

struct NativeEncoder::Layer {
  enum class Kind { kConv, kAffine, kRelu, kSilu, kSoftplus };
  Kind kind = Kind::kAffine;
  int64_t in_channels = 0, out_channels = 0, in_length = 0, out_length = 0;
  int64_t kernel = 1, stride = 1, padding = 0;
  // Convolution: weight [kernel][in][out] for the forward pass and weight_t [out][kernel][in]
  // for the backward one, both contiguous along the vectorised index. Affine: per-channel scale.
  std::vector<double> weight, weight_t;
  std::vector<double> bias;             // convolution bias or affine shift, per output channel
  double beta = 1.0, threshold = 20.0;  // Softplus

  int64_t in_size() const { return in_length * in_channels; }
  int64_t out_size() const { return out_length * out_channels; }
};

namespace {

using torch::jit::Module;

class NotRecognised : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The qualified class name without TorchScript's "___torch_mangle_<n>." parts, which it adds
// when one class is scripted with different attributes (each Conv1d shape, for instance).
std::string type_name(const Module& m) {
  std::string name = m.type()->name() ? m.type()->name()->qualifiedName() : "?";
  const std::string mark = "___torch_mangle_";
  for (size_t at = name.find(mark); at != std::string::npos; at = name.find(mark, at)) {
    const size_t dot = name.find('.', at);
    name.erase(at, dot == std::string::npos ? std::string::npos : dot - at + 1);
  }
  return name;
}

bool ends_with(const std::string& text, const std::string& tail) {
  return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

// A float64 copy of a tensor attribute, checked against the expected number of elements.
std::vector<double> tensor_values(const Module& m, const std::string& name, int64_t expected) {
  if (!m.hasattr(name) || !m.attr(name).isTensor()) throw NotRecognised(type_name(m) + " has no tensor " + name);
  torch::Tensor t = m.attr(name).toTensor().to(torch::kFloat64).contiguous();
  if (t.numel() != expected) {
    throw NotRecognised(type_name(m) + "." + name + " has " + std::to_string(t.numel()) + " values, expected " +
                        std::to_string(expected));
  }
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

bool is_none(const Module& m, const std::string& name) { return !m.hasattr(name) || m.attr(name).isNone(); }

// tensor_values of an optional attribute (a bias, an affine weight), or `fill` where it is None.
std::vector<double> optional_values(const Module& m, const std::string& name, int64_t expected, double fill) {
  return is_none(m, name) ? std::vector<double>(static_cast<size_t>(expected), fill) : tensor_values(m, name, expected);
}

// Conv1d keeps stride, padding and dilation as one-element tuples.
int64_t int_setting(const Module& m, const std::string& name) {
  if (!m.hasattr(name)) throw NotRecognised(type_name(m) + " has no setting " + name);
  const auto value = m.attr(name);
  if (value.isInt()) return value.toInt();
  if (value.isTuple() && value.toTupleRef().elements().size() == 1 && value.toTupleRef().elements()[0].isInt()) {
    return value.toTupleRef().elements()[0].toInt();
  }
  throw NotRecognised(type_name(m) + "." + name + " is not a single integer");
}

double double_setting(const Module& m, const std::string& name) {
  if (!m.hasattr(name)) throw NotRecognised(type_name(m) + " has no setting " + name);
  const auto value = m.attr(name);
  if (value.isDouble()) return value.toDouble();
  if (value.isInt()) return static_cast<double>(value.toInt());
  throw NotRecognised(type_name(m) + "." + name + " is not a number");
}

NativeEncoder::Layer conv_layer(const Module& m, int64_t channels, int64_t length) {
  using Layer = NativeEncoder::Layer;
  if (int_setting(m, "groups") != 1 || int_setting(m, "dilation") != 1 || !m.hasattr("padding_mode") ||
      m.attr("padding_mode").toStringRef() != "zeros") {
    throw NotRecognised("a Conv1d with groups, dilation or non-zero padding mode");
  }
  const torch::Tensor w = m.attr("weight").toTensor();
  if (w.dim() != 3 || w.size(1) != channels) throw NotRecognised("a Conv1d whose input channels do not chain");
  Layer layer;
  layer.kind = Layer::Kind::kConv;
  layer.in_channels = channels;
  layer.in_length = length;
  layer.out_channels = w.size(0);
  layer.kernel = w.size(2);
  layer.stride = int_setting(m, "stride");
  layer.padding = int_setting(m, "padding");
  layer.out_length = (length + 2 * layer.padding - layer.kernel) / layer.stride + 1;
  if (layer.stride < 1 || layer.padding < 0 || layer.out_length < 1) throw NotRecognised("a Conv1d of odd geometry");
  const int64_t co = layer.out_channels, ci = channels, k = layer.kernel;
  const std::vector<double> values = tensor_values(m, "weight", co * ci * k);  // [out][in][kernel]
  layer.weight.resize(values.size());
  layer.weight_t.resize(values.size());
  for (int64_t o = 0; o < co; ++o) {
    for (int64_t i = 0; i < ci; ++i) {
      for (int64_t tap = 0; tap < k; ++tap) {
        const double v = values[static_cast<size_t>((o * ci + i) * k + tap)];
        layer.weight[static_cast<size_t>((tap * ci + i) * co + o)] = v;
        layer.weight_t[static_cast<size_t>((o * k + tap) * ci + i)] = v;
      }
    }
  }
  layer.bias = optional_values(m, "bias", co, 0.0);
  return layer;
}

NativeEncoder::Layer batch_norm_layer(const Module& m, int64_t channels, int64_t length) {
  using Layer = NativeEncoder::Layer;
  if (m.is_training() || is_none(m, "running_mean") || is_none(m, "running_var")) {
    throw NotRecognised("a BatchNorm1d without running statistics or in training mode");
  }
  const std::vector<double> mean = tensor_values(m, "running_mean", channels);
  const std::vector<double> var = tensor_values(m, "running_var", channels);
  const std::vector<double> gamma = optional_values(m, "weight", channels, 1.0);
  const std::vector<double> beta = optional_values(m, "bias", channels, 0.0);
  const double eps = double_setting(m, "eps");
  Layer layer;
  layer.kind = Layer::Kind::kAffine;
  layer.in_channels = layer.out_channels = channels;
  layer.in_length = layer.out_length = length;
  for (size_t c = 0; c < mean.size(); ++c) {
    const double scale = gamma[c] / std::sqrt(var[c] + eps);
    layer.weight.push_back(scale);
    layer.bias.push_back(beta[c] - mean[c] * scale);
  }
  return layer;
}

NativeEncoder::Layer activation_layer(const Module& m, int64_t channels, int64_t length) {
  using Layer = NativeEncoder::Layer;
  const std::string name = type_name(m);
  Layer layer;
  layer.in_channels = layer.out_channels = channels;
  layer.in_length = layer.out_length = length;
  if (ends_with(name, "torch.nn.modules.activation.ReLU")) {
    layer.kind = Layer::Kind::kRelu;
  } else if (ends_with(name, "torch.nn.modules.activation.SiLU")) {
    layer.kind = Layer::Kind::kSilu;
  } else if (ends_with(name, "torch.nn.modules.activation.Softplus")) {
    layer.kind = Layer::Kind::kSoftplus;
    layer.beta = double_setting(m, "beta");
    layer.threshold = double_setting(m, "threshold");
  } else {
    throw NotRecognised("a layer of type " + name);
  }
  return layer;
}

// out[p] += sum_q x[q] m[q * stride + p] for p < n_out, q < n_in: the product both convolution
// passes reduce to (forward: taps x weights; backward: output gradient x transposed weights).
// Sixteen outputs at a time stay in registers, in two sets of accumulators so that the
// multiply-add chains overlap.
NANOCHART_HOT void accumulate_product(int64_t n_out, int64_t n_in, const double* __restrict x,
                                      const double* __restrict m, int64_t stride, double* __restrict out) {
  int64_t p = 0;
  for (; p + 16 <= n_out; p += 16) {
    Vec4 a0 = load4(out + p), a1 = load4(out + p + 4), a2 = load4(out + p + 8), a3 = load4(out + p + 12);
    Vec4 b0 = {0, 0, 0, 0}, b1 = b0, b2 = b0, b3 = b0;
    int64_t q = 0;
    for (; q + 2 <= n_in; q += 2) {
      const double* m0 = m + q * stride + p;
      const double* m1 = m0 + stride;
      const double x0 = x[q], x1 = x[q + 1];
      a0 += x0 * load4(m0);
      a1 += x0 * load4(m0 + 4);
      a2 += x0 * load4(m0 + 8);
      a3 += x0 * load4(m0 + 12);
      b0 += x1 * load4(m1);
      b1 += x1 * load4(m1 + 4);
      b2 += x1 * load4(m1 + 8);
      b3 += x1 * load4(m1 + 12);
    }
    if (q < n_in) {
      const double* m0 = m + q * stride + p;
      const double x0 = x[q];
      a0 += x0 * load4(m0);
      a1 += x0 * load4(m0 + 4);
      a2 += x0 * load4(m0 + 8);
      a3 += x0 * load4(m0 + 12);
    }
    store4(out + p, a0 + b0);
    store4(out + p + 4, a1 + b1);
    store4(out + p + 8, a2 + b2);
    store4(out + p + 12, a3 + b3);
  }
  for (; p + 4 <= n_out; p += 4) {
    Vec4 a = load4(out + p);
    for (int64_t q = 0; q < n_in; ++q) a += x[q] * load4(m + q * stride + p);
    store4(out + p, a);
  }
  for (; p < n_out; ++p) {
    double a = out[p];
    for (int64_t q = 0; q < n_in; ++q) a += x[q] * m[q * stride + p];
    out[p] = a;
  }
}

// accumulate_product for two inputs x_a, x_b and the same m, into out_a and then out_b, which may
// overlap: every m value loaded serves two multiply-adds.
NANOCHART_HOT void accumulate_product_pair(int64_t n_out, int64_t n_in, const double* __restrict x_a,
                                           const double* __restrict x_b, const double* __restrict m, int64_t stride,
                                           double* out_a, double* out_b) {
  int64_t p = 0;
  for (; p + 16 <= n_out; p += 16) {
    Vec4 a0 = {0, 0, 0, 0}, a1 = a0, a2 = a0, a3 = a0, b0 = a0, b1 = a0, b2 = a0, b3 = a0;
    for (int64_t q = 0; q < n_in; ++q) {
      const double* m0 = m + q * stride + p;
      const Vec4 w0 = load4(m0), w1 = load4(m0 + 4), w2 = load4(m0 + 8), w3 = load4(m0 + 12);
      const double xa = x_a[q], xb = x_b[q];
      a0 += xa * w0;
      a1 += xa * w1;
      a2 += xa * w2;
      a3 += xa * w3;
      b0 += xb * w0;
      b1 += xb * w1;
      b2 += xb * w2;
      b3 += xb * w3;
    }
    store4(out_a + p, load4(out_a + p) + a0);
    store4(out_a + p + 4, load4(out_a + p + 4) + a1);
    store4(out_a + p + 8, load4(out_a + p + 8) + a2);
    store4(out_a + p + 12, load4(out_a + p + 12) + a3);
    store4(out_b + p, load4(out_b + p) + b0);
    store4(out_b + p + 4, load4(out_b + p + 4) + b1);
    store4(out_b + p + 8, load4(out_b + p + 8) + b2);
    store4(out_b + p + 12, load4(out_b + p + 12) + b3);
  }
  if (p < n_out) {
    accumulate_product(n_out - p, n_in, x_a, m + p, stride, out_a + p);
    accumulate_product(n_out - p, n_in, x_b, m + p, stride, out_b + p);
  }
}

// Walks the output positions of convolution c. Inside, two positions t, t+1 at a time, all of
// whose taps fall inside the input: pair(t, start), start being the input position of tap 0 of
// t (so that both passes share every weight load over the pair). Near the ends, one position at
// a time with only its taps first..last-1 inside the input (the others fall on the zero
// padding): single(t, start, first, last).
template <typename Pair, typename Single>
void walk_positions(const NativeEncoder::Layer& c, Pair&& pair, Single&& single) {
  for (int64_t t = 0; t < c.out_length; ++t) {
    const int64_t start = t * c.stride - c.padding;
    const int64_t first = std::max<int64_t>(0, -start), last = std::min<int64_t>(c.kernel, c.in_length - start);
    if (last <= first) continue;
    if (t + 1 < c.out_length && start >= 0 && start + c.stride + c.kernel <= c.in_length) {
      pair(t, start);
      ++t;
    } else {
      single(t, start, first, last);
    }
  }
}

// Taps first..last-1 of all input channels are contiguous in the channels-last input.
void conv_forward(const NativeEncoder::Layer& c, const double* x, double* y) {
  const int64_t ci = c.in_channels, co = c.out_channels;
  for (int64_t t = 0; t < c.out_length; ++t) std::copy(c.bias.begin(), c.bias.end(), y + t * co);
  walk_positions(
      c,
      [&](int64_t t, int64_t start) {
        accumulate_product_pair(co, c.kernel * ci, x + start * ci, x + (start + c.stride) * ci, c.weight.data(), co,
                                y + t * co, y + (t + 1) * co);
      },
      [&](int64_t t, int64_t start, int64_t first, int64_t last) {
        accumulate_product(co, (last - first) * ci, x + (start + first) * ci, c.weight.data() + first * ci * co, co,
                           y + t * co);
      });
}

void conv_backward(const NativeEncoder::Layer& c, const double* grad_out, double* grad_in) {
  const int64_t ci = c.in_channels, co = c.out_channels, taps = c.kernel * ci;
  std::fill(grad_in, grad_in + c.in_size(), 0.0);
  walk_positions(
      c,
      [&](int64_t t, int64_t start) {
        accumulate_product_pair(taps, co, grad_out + t * co, grad_out + (t + 1) * co, c.weight_t.data(), taps,
                                grad_in + start * ci, grad_in + (start + c.stride) * ci);
      },
      [&](int64_t t, int64_t start, int64_t first, int64_t last) {
        accumulate_product((last - first) * ci, co, grad_out + t * co, c.weight_t.data() + first * ci, taps,
                           grad_in + (start + first) * ci);
      });
}

NANOCHART_HOT void affine(int64_t length, int64_t channels, const double* __restrict scale,
                          const double* __restrict shift, const double* __restrict x, double* __restrict y) {
  for (int64_t t = 0; t < length; ++t) {
    for (int64_t c = 0; c < channels; ++c) y[t * channels + c] = x[t * channels + c] * scale[c] + shift[c];
  }
}

NANOCHART_HOT void relu(int64_t n, const double* __restrict x, double* __restrict y) {
  for (int64_t a = 0; a < n; ++a) y[a] = x[a] > 0.0 ? x[a] : 0.0;
}

// exp(-x) for the logistic function, kept inside vector_exp's range: beyond 700 the logistic
// function is 0 or 1 to double precision anyway.
__attribute__((always_inline)) inline double exp_minus(double x) {
  const double clamped = x > 700.0 ? 700.0 : (x < -700.0 ? -700.0 : x);
  return vector_exp(-clamped);
}

NANOCHART_HOT void silu(int64_t n, const double* __restrict x, double* __restrict y) {
  for (int64_t a = 0; a < n; ++a) y[a] = x[a] / (1.0 + exp_minus(x[a]));
}

NANOCHART_HOT void silu_backward(int64_t n, const double* __restrict x, const double* __restrict grad_out,
                                 double* __restrict grad_in) {
  for (int64_t a = 0; a < n; ++a) {
    const double s = 1.0 / (1.0 + exp_minus(x[a]));
    grad_in[a] = grad_out[a] * s * (1.0 + x[a] * (1.0 - s));
  }
}

// Softplus as torch defines it: x where beta x > threshold, else log(1 + exp(beta x)) / beta.
void softplus(const NativeEncoder::Layer& l, int64_t n, const double* x, double* y) {
  for (int64_t a = 0; a < n; ++a) {
    const double z = l.beta * x[a];
    y[a] = z > l.threshold ? x[a] : std::log1p(std::exp(z)) / l.beta;
  }
}

void softplus_backward(const NativeEncoder::Layer& l, int64_t n, const double* x, const double* grad_out,
                       double* grad_in) {
  for (int64_t a = 0; a < n; ++a) {
    const double z = l.beta * x[a];
    grad_in[a] = z > l.threshold ? grad_out[a] : grad_out[a] / (1.0 + std::exp(-z));
  }
}

}  // namespace

NativeEncoder::NativeEncoder() = default;
NativeEncoder::~NativeEncoder() = default;
NativeEncoder::NativeEncoder(NativeEncoder&&) noexcept = default;

std::unique_ptr<NativeEncoder> NativeEncoder::from_module(const Module& module, int64_t n_bins, std::string& why_not) {
  // The evaluator is written for vector registers of four doubles; elsewhere its baseline build
  // is slower than libtorch.
  if (!wide_vectors()) {
    why_not = "the core's evaluator needs an x86-64 CPU with AVX2 and FMA";
    return nullptr;
  }
  std::unique_ptr<NativeEncoder> native(new NativeEncoder());
  try {
    // The class moved to nanochart.model.encoder in 0.2; models exported before keep the old name.
    const std::string name = type_name(module);
    if (!ends_with(name, "nanochart.model.encoder.ConvEncoder") && !ends_with(name, "nanochart.encoder.ConvEncoder")) {
      throw NotRecognised("the module is a " + name + ", not nanochart.model.encoder.ConvEncoder");
    }
    native->n_bins_ = n_bins;
    native->input_mean_ = tensor_values(module, "input_mean", n_bins);
    native->input_scale_ = tensor_values(module, "input_scale", n_bins);
    if (!module.hasattr("blocks") || !module.attr("blocks").isModule()) throw NotRecognised("no blocks");
    int64_t channels = 1, length = n_bins;
    for (const auto& child : module.attr("blocks").toModule().named_children()) {
      const std::string name = type_name(child.value);
      Layer layer;
      if (ends_with(name, "torch.nn.modules.conv.Conv1d")) {
        layer = conv_layer(child.value, channels, length);
      } else if (ends_with(name, "torch.nn.modules.batchnorm.BatchNorm1d")) {
        layer = batch_norm_layer(child.value, channels, length);
      } else {
        layer = activation_layer(child.value, channels, length);
      }
      channels = layer.out_channels;
      length = layer.out_length;
      native->layers_.push_back(std::move(layer));
    }
    if (!module.hasattr("linear") || !module.attr("linear").isModule()) throw NotRecognised("no linear layer");
    const Module linear = module.attr("linear").toModule();
    const torch::Tensor w = linear.attr("weight").toTensor();
    const int64_t features = channels * length;
    if (w.dim() != 2 || w.size(1) != features) throw NotRecognised("a linear layer that does not fit the blocks");
    native->n_cvs_ = w.size(0);
    // Flatten orders features channel-major ([channels][length]); the activations here are
    // channels-last, so permute the weights once instead of the activations on every call.
    const std::vector<double> values = tensor_values(linear, "weight", native->n_cvs_ * features);
    native->linear_weight_.resize(values.size());
    for (int64_t d = 0; d < native->n_cvs_; ++d) {
      for (int64_t c = 0; c < channels; ++c) {
        for (int64_t t = 0; t < length; ++t) {
          native->linear_weight_[static_cast<size_t>((d * length + t) * channels + c)] =
              values[static_cast<size_t>((d * channels + c) * length + t)];
        }
      }
    }
    native->linear_bias_ = optional_values(linear, "bias", native->n_cvs_, 0.0);
  } catch (const NotRecognised& e) {
    why_not = e.what();
    return nullptr;
  } catch (const c10::Error& e) {
    why_not = std::string("unexpected module contents (") + e.what_without_backtrace() + ")";
    return nullptr;
  }
  return native;
}

void NativeEncoder::forward(const double* g, double* s, std::vector<std::vector<double>>& activations) const {
  activations.resize(layers_.size() + 1);
  std::vector<double>& input = activations[0];
  input.resize(static_cast<size_t>(n_bins_));
  for (int64_t k = 0; k < n_bins_; ++k) input[k] = (g[k] - input_mean_[k]) / input_scale_[k];
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& layer = layers_[l];
    const double* x = activations[l].data();
    std::vector<double>& out = activations[l + 1];
    out.resize(static_cast<size_t>(layer.out_size()));
    double* y = out.data();
    const int64_t n = layer.out_size();
    switch (layer.kind) {
      case Layer::Kind::kConv:
        conv_forward(layer, x, y);
        break;
      case Layer::Kind::kAffine:
        affine(layer.out_length, layer.out_channels, layer.weight.data(), layer.bias.data(), x, y);
        break;
      case Layer::Kind::kRelu:
        relu(n, x, y);
        break;
      case Layer::Kind::kSilu:
        silu(n, x, y);
        break;
      case Layer::Kind::kSoftplus:
        softplus(layer, n, x, y);
        break;
    }
  }
  const std::vector<double>& features = activations.back();
  const int64_t f = static_cast<int64_t>(features.size());
  for (int64_t d = 0; d < n_cvs_; ++d) {
    double sum = linear_bias_[d];
    const double* w = linear_weight_.data() + d * f;
    for (int64_t j = 0; j < f; ++j) sum += w[j] * features[j];
    s[d] = sum;
  }
}

void NativeEncoder::evaluate(const double* g, double* s) const {
  std::vector<std::vector<double>> activations;
  forward(g, s, activations);
}

void NativeEncoder::forward_recorded(const double* g, double* s) {
  forward(g, s, recorded_activations_);
  recorded_ = true;
}

void NativeEncoder::vjp(const double* dV_ds, double* dV_dg) const {
  const int64_t f = static_cast<int64_t>(recorded_activations_.back().size());
  std::vector<double> grad(static_cast<size_t>(f), 0.0), next;
  for (int64_t d = 0; d < n_cvs_; ++d) {
    const double* w = linear_weight_.data() + d * f;
    for (int64_t j = 0; j < f; ++j) grad[j] += dV_ds[d] * w[j];
  }
  for (size_t l = layers_.size(); l-- > 0;) {
    const Layer& layer = layers_[l];
    const double* x = recorded_activations_[l].data();  // the layer's input
    next.resize(static_cast<size_t>(layer.in_size()));
    const int64_t n = layer.in_size();
    switch (layer.kind) {
      case Layer::Kind::kConv:
        conv_backward(layer, grad.data(), next.data());
        break;
      case Layer::Kind::kAffine: {  // scaled per channel like the forward pass, without the shift
        const int64_t channels = layer.in_channels;
        for (int64_t t = 0; t < layer.in_length; ++t) {
          for (int64_t c = 0; c < channels; ++c) next[t * channels + c] = grad[t * channels + c] * layer.weight[c];
        }
        break;
      }
      case Layer::Kind::kRelu:
        // As torch: no gradient where the input is exactly zero.
        for (int64_t a = 0; a < n; ++a) next[a] = x[a] > 0.0 ? grad[a] : 0.0;
        break;
      case Layer::Kind::kSilu:
        silu_backward(n, x, grad.data(), next.data());
        break;
      case Layer::Kind::kSoftplus:
        softplus_backward(layer, n, x, grad.data(), next.data());
        break;
    }
    grad.swap(next);
  }
  for (int64_t k = 0; k < n_bins_; ++k) dV_dg[k] = grad[k] / input_scale_[k];
}

}  // namespace nanochart
