#include "native_encoder.h"

#include <torch/script.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "thread_pool.h"
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

// out_i[j] += sum_q x_i[q] m[q * stride + j] for j < n_out, q < n_in and Inputs inputs i: the
// product both convolution passes reduce to (forward: taps x weights; backward: output gradient x
// transposed weights), for Inputs neighbouring output positions at once so that every row of m
// loaded serves Inputs positions (m often lives in L2, the inputs in L1). Two vectors of outputs
// per position stay in registers. The outputs may overlap (backward: neighbouring positions share
// input positions): each is updated by a load-add-store, position after position.
template <typename V, int Inputs>
NANOCHART_HOT void accumulate_products(int64_t n_out, int64_t n_in, const double* const* x, const double* __restrict m,
                                       int64_t stride, double* const* out) {
  constexpr int L = kLanes<V>;
  int64_t j = 0;
  for (; j + 2 * L <= n_out; j += 2 * L) {
    V a[Inputs], b[Inputs];
    for (int i = 0; i < Inputs; ++i) a[i] = b[i] = V{} * 0.0;
    for (int64_t q = 0; q < n_in; ++q) {
      const double* row = m + q * stride + j;
      const V w0 = load<V>(row), w1 = load<V>(row + L);
      for (int i = 0; i < Inputs; ++i) {
        const double xi = x[i][q];
        a[i] += xi * w0;
        b[i] += xi * w1;
      }
    }
    for (int i = 0; i < Inputs; ++i) {
      store(out[i] + j, load<V>(out[i] + j) + a[i]);
      store(out[i] + j + L, load<V>(out[i] + j + L) + b[i]);
    }
  }
  for (int i = 0; i < Inputs; ++i) {
    for (int64_t k = j; k < n_out; ++k) {
      double sum = out[i][k];
      for (int64_t q = 0; q < n_in; ++q) sum += x[i][q] * m[q * stride + k];
      out[i][k] = sum;
    }
  }
}

// accumulate_products for one input.
template <typename V>
void accumulate_product(int64_t n_out, int64_t n_in, const double* x, const double* m, int64_t stride, double* out) {
  accumulate_products<V, 1>(n_out, n_in, &x, m, stride, &out);
}

// Output positions handled together: each block's accumulators (two vectors per position) and the
// two weight vectors stay in registers, 18 of AVX-512's 32 with eight positions; four positions
// (10 registers) with AVX2's 16.
template <typename V>
constexpr int kPositions = kLanes<V> == 8 ? 8 : 4;
constexpr int kMaxPositions = 8;

template <typename V, int... Count>
void accumulate_count(int64_t count, int64_t n_out, int64_t n_in, const double* const* xs, const double* m,
                      int64_t stride, double* const* outs, std::integer_sequence<int, Count...>) {
  ((count == Count + 1 ? (accumulate_products<V, Count + 1>(n_out, n_in, xs, m, stride, outs), 0) : 0), ...);
}

// accumulate_products for `count` (1..kPositions<V>) inputs, x_i = x + i * x_step and out_i = out + i *
// out_step.
template <typename V>
void accumulate_positions(int64_t count, int64_t n_out, int64_t n_in, const double* x, int64_t x_step, const double* m,
                          int64_t stride, double* out, int64_t out_step) {
  const double* xs[kMaxPositions];
  double* outs[kMaxPositions];
  for (int64_t i = 0; i < count; ++i) {
    xs[i] = x + i * x_step;
    outs[i] = out + i * out_step;
  }
  accumulate_count<V>(count, n_out, n_in, xs, m, stride, outs, std::make_integer_sequence<int, kPositions<V>>());
}

// The convolutions run on inputs padded with the layer's zero padding, plus what the last block of
// positions reads beyond (none for the usual geometries), so that every output position has all its
// taps: position t reads padded positions t * stride .. t * stride + kernel - 1, all channels, which
// are contiguous in the channels-last layout.
int64_t padded_length(const NativeEncoder::Layer& c) {
  return std::max(c.in_length + 2 * c.padding, (c.out_length - 1) * c.stride + c.kernel);
}

// Calls f(t, count) for blocks of at most kPositions<V> output positions covering first..last-1,
// of equal sizes to within one (25 positions: 7, 6, 6, 6, not 8, 8, 8, 1), so that no block wastes
// a pass over the weights on a position or two.
template <typename V, typename F>
void for_blocks(int64_t first, int64_t last, F&& f) {
  const int64_t positions = last - first, blocks = (positions + kPositions<V> - 1) / kPositions<V>;
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t begin = first + b * positions / blocks, end = first + (b + 1) * positions / blocks;
    f(begin, end - begin);
  }
}

// Convolutions of at least this many multiply-adds (some 50 us of work) are shared by the threads.
// Smaller ones are not: moving a layer's input and output between cores costs about what the
// second thread saves. Measured with the paper's shape (layers of 8 000 to 150 000 multiply-adds),
// values+forces at N = 147 / 309 on the C++ API, Intel Xeon VM, fastest of 2000 calls: sharing
// them, 196 / 695 us on one thread and 151 / 417 us on two; never sharing, 183-188 / 670-680 us and
// 127-134 / 390-395 us.
constexpr int64_t kMinSharedMultiplyAdds = int64_t{1} << 20;
constexpr int64_t kChunks = 2;

bool large(const NativeEncoder::Layer& c) {
  return c.out_length * c.out_channels * c.kernel * c.in_channels >= kMinSharedMultiplyAdds;
}

// Whether the backward pass of a large layer is cut into kChunks chunks of consecutive output
// positions: whatever the thread count, so that results do not depend on it, and only with at least
// two blocks of positions, since a layer of one block would take two passes over its weights
// instead of one (measured with eight positions per block: values+forces at N = 147 on one thread
// 188-200 us against 197-223 us with the last two layers cut in two).
template <typename V>
bool chunked(const NativeEncoder::Layer& c) {
  return large(c) && c.out_length >= kChunks * kPositions<V>;
}

// Output positions first..last-1 of chunk `chunk` of kChunks.
std::pair<int64_t, int64_t> chunk_positions(const NativeEncoder::Layer& c, int64_t chunk) {
  return {chunk * c.out_length / kChunks, (chunk + 1) * c.out_length / kChunks};
}

template <typename V>
void conv_forward(const NativeEncoder::Layer& c, const double* x, double* y, std::vector<double>& padded, int threads) {
  const int64_t ci = c.in_channels, co = c.out_channels;
  padded.assign(static_cast<size_t>(padded_length(c) * ci), 0.0);
  std::copy(x, x + c.in_size(), padded.begin() + c.padding * ci);
  for (int64_t t = 0; t < c.out_length; ++t) std::copy(c.bias.begin(), c.bias.end(), y + t * co);
  // Output channels first..first+count-1 of positions first_t..last_t-1.
  const auto run = [&](int64_t first_t, int64_t last_t, int64_t first, int64_t count) {
    for_blocks<V>(first_t, last_t, [&](int64_t t, int64_t n) {
      accumulate_positions<V>(n, count, c.kernel * ci, padded.data() + t * c.stride * ci, c.stride * ci,
                              c.weight.data() + first, co, y + t * co + first, co);
    });
  };
  // Every output's sum runs over the same weights in the same order however outputs are grouped,
  // so threads may share the forward pass any way: halves of the output channels when they are
  // whole pairs of vectors (no output then takes the scalar tail's other order), each thread then
  // reading half the weights, else halves of the positions.
  constexpr int64_t kPair = 2 * kLanes<V>;
  const bool by_channels = co % (kChunks * kPair) == 0;
  if (threads <= 1 || !large(c) || (!by_channels && c.out_length < kChunks)) return run(0, c.out_length, 0, co);
  parallel_chunks(threads, kChunks, [&](int64_t chunk, int) {
    if (by_channels) return run(0, c.out_length, chunk * co / kChunks, co / kChunks);
    const auto [first, last] = chunk_positions(c, chunk);
    run(first, last, 0, co);
  });
}

// Neighbouring positions send gradient to shared input positions: when chunked, each chunk sums
// into its own buffer and the buffers are added in chunk order, for any thread count.
template <typename V>
void conv_backward(const NativeEncoder::Layer& c, const double* grad_out, double* grad_in,
                   std::vector<std::vector<double>>& padded, int threads) {
  const int64_t ci = c.in_channels, co = c.out_channels, taps = c.kernel * ci;
  const size_t size = static_cast<size_t>(padded_length(c) * ci);
  const auto run_positions = [&](int64_t first, int64_t last, double* out) {
    for_blocks<V>(first, last, [&](int64_t t, int64_t count) {
      accumulate_positions<V>(count, taps, co, grad_out + t * co, co, c.weight_t.data(), taps, out + t * c.stride * ci,
                              c.stride * ci);
    });
  };
  const bool in_chunks = chunked<V>(c);
  padded.resize(in_chunks ? kChunks : 1);
  for (auto& buffer : padded) buffer.assign(size, 0.0);
  if (in_chunks) {
    parallel_chunks(threads, kChunks, [&](int64_t chunk, int) {
      const auto [first, last] = chunk_positions(c, chunk);
      run_positions(first, last, padded[static_cast<size_t>(chunk)].data());
    });
    for (size_t chunk = 1; chunk < padded.size(); ++chunk) {
      for (size_t k = 0; k < size; ++k) padded[0][k] += padded[chunk][k];
    }
  } else {
    run_positions(0, c.out_length, padded[0].data());
  }
  const double* inside = padded[0].data() + c.padding * ci;
  std::copy(inside, inside + c.in_size(), grad_in);
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

// The logistic function 1 / (1 + exp(-x)) of n values. On CPUs with AVX-512 the division is a
// reciprocal estimate refined by Newton's method (division held the SiLU layers at a vector every
// 16 cycles), else a plain division.
NANOCHART_HOT void logistic_divided(int64_t n, const double* __restrict x, double* __restrict s) {
  for (int64_t a = 0; a < n; ++a) s[a] = 1.0 / (1.0 + exp_minus(x[a]));
}

#if NANOCHART_HAVE_AVX512_RECIPROCAL
NANOCHART_AVX512 void logistic_reciprocal(int64_t n, const double* __restrict x, double* __restrict s) {
  int64_t a = 0;
  for (; a + 8 <= n; a += 8) {
    Vec8 d;
    for (int lane = 0; lane < 8; ++lane) d[lane] = 1.0 + exp_minus(x[a + lane]);
    store(s + a, reciprocal(d));
  }
  for (; a < n; ++a) s[a] = 1.0 / (1.0 + exp_minus(x[a]));
}
#endif

void logistic(int64_t n, const double* x, double* s) {
#if NANOCHART_HAVE_AVX512_RECIPROCAL
  if (avx512_vectors()) return logistic_reciprocal(n, x, s);
#endif
  logistic_divided(n, x, s);
}

// y = x s(x) in place of the logistic values s that y holds on entry.
NANOCHART_HOT void times_input(int64_t n, const double* __restrict x, double* __restrict y) {
  for (int64_t a = 0; a < n; ++a) y[a] *= x[a];
}

// y = x s for logistic values s.
NANOCHART_HOT void times_logistic(int64_t n, const double* __restrict x, const double* __restrict s,
                                  double* __restrict y) {
  for (int64_t a = 0; a < n; ++a) y[a] = x[a] * s[a];
}

// y = x s(x); with `kept`, the logistic values s go there too, for silu_backward.
void silu(int64_t n, const double* x, double* y, std::vector<double>* kept) {
  if (kept == nullptr) {
    logistic(n, x, y);
    times_input(n, x, y);
    return;
  }
  kept->resize(static_cast<size_t>(n));
  logistic(n, x, kept->data());
  times_logistic(n, x, kept->data(), y);
}

// grad_in = grad_out s (1 + x (1 - s)) for the logistic values s that the forward pass kept.
NANOCHART_HOT void silu_backward(int64_t n, const double* __restrict x, const double* __restrict s,
                                 const double* __restrict grad_out, double* __restrict grad_in) {
  for (int64_t a = 0; a < n; ++a) grad_in[a] = grad_out[a] * s[a] * (1.0 + x[a] * (1.0 - s[a]));
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

void NativeEncoder::forward(const double* g, double* s, std::vector<std::vector<double>>& activations,
                            std::vector<double>& padded, int threads,
                            std::vector<std::vector<double>>* logistic_values) const {
  activations.resize(layers_.size() + 1);
  if (logistic_values != nullptr) logistic_values->resize(layers_.size());
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
        avx512_vectors() ? conv_forward<Vec8>(layer, x, y, padded, threads)
                         : conv_forward<Vec4>(layer, x, y, padded, threads);
        break;
      case Layer::Kind::kAffine:
        affine(layer.out_length, layer.out_channels, layer.weight.data(), layer.bias.data(), x, y);
        break;
      case Layer::Kind::kRelu:
        relu(n, x, y);
        break;
      case Layer::Kind::kSilu:
        silu(n, x, y, logistic_values != nullptr ? &(*logistic_values)[l] : nullptr);
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

void NativeEncoder::evaluate(const double* g, double* s, int threads) const {
  std::vector<std::vector<double>> activations;
  std::vector<double> padded;
  forward(g, s, activations, padded, threads);
}

void NativeEncoder::forward_recorded(const double* g, double* s, int threads) {
  forward(g, s, recorded_activations_, scratch_.padded, threads, &recorded_logistic_);
  recorded_ = true;
}

void NativeEncoder::vjp(const double* dV_ds, double* dV_dg, int threads) const {
  const int64_t f = static_cast<int64_t>(recorded_activations_.back().size());
  std::vector<double>& grad = scratch_.grad;
  std::vector<double>& next = scratch_.next;
  // A convolution's padded input gradient, per chunk.
  std::vector<std::vector<double>>& padded = scratch_.padded_chunks;
  grad.assign(static_cast<size_t>(f), 0.0);
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
        avx512_vectors() ? conv_backward<Vec8>(layer, grad.data(), next.data(), padded, threads)
                         : conv_backward<Vec4>(layer, grad.data(), next.data(), padded, threads);
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
        silu_backward(n, x, recorded_logistic_[l].data(), grad.data(), next.data());
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
