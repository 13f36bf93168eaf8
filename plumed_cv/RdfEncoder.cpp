// RDF_ENCODER: the nanochart CV as a PLUMED action, a thin adapter over the C++ core (cpp/).
// Built as a shared library that PLUMED's LOAD action loads; see plumed_cv/README.md.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/ActionAtomistic.h"
#include "core/ActionRegister.h"
#include "core/ActionWithValue.h"
#include "core/PlumedMain.h"
#include "nanochart/cv.h"
#include "nanochart/error.h"
#include "python_lock.h"
#include "tools/Communicator.h"
#include "tools/Pbc.h"
#include "tools/Units.h"
#if NANOCHART_PLUMED_VERSION < 210
#include "core/Atoms.h"
#endif

namespace PLMD {
namespace nanochart_cv {

//+PLUMEDOC COLVAR RDF_ENCODER
/*
Chart coordinates of a metal nanocluster: a nanochart encoder applied to its Gaussian-smeared RDF.

The group's pair distances r_ij are smeared into the radial distribution function

\f[
g_k = \frac{1}{P} \sum_{i<j} \frac{1}{\sigma\sqrt{2\pi}} e^{-(r_k - r_{ij})^2 / 2\sigma^2},
\qquad k = 0 \dots M-1,
\f]

on the grid, width \f$\sigma\f$ and truncation stored in the model file, and the TorchScript encoder of the
model maps \f$g\f$ to the CVs, one component per CV named as in the model (default cv1, cv2, ...). Forces go
back with one vector-Jacobian product through the encoder and the analytic RDF derivatives, virial
included, so the CV can drive metadynamics, umbrella sampling and NPT runs. PLUMED's length unit is
converted to the model's (angstrom for nanochart's models) automatically.

Models come from `nanochart export` (Python); the metadata inside the file carries the RDF settings, so
the input needs only MODEL and the atoms. Using a model on a cluster size other than the one it was
trained on is allowed but logged as a warning. With MPI, the pair loops are split over PLUMED's ranks.
Models of nanochart's own encoder architecture run in nanochart's own evaluator, checked against libtorch
when the model is loaded; ENGINE=libtorch runs every model through libtorch (the log says which runs).

NOVELTY adds the component `novelty`: how far the structure lies from the model's training structures on the
chart, the mean distance from its CVs to the k nearest training structures' CVs stored in the model file, over
the scale stored there (a typical in-distribution held-out structure scores 1). Above the threshold stored in
the model (calibrated on held-out structures by `nanochart calibrate-novelty`) the structure is off the chart:
its CVs are extrapolated, and a bias acting on them is not to be trusted. The log then gets a warning, the
first time and afterwards at most once every NOVELTY_WARN_STRIDE steps (with the number of off-chart steps in
between). The novelty has no derivatives: it is for monitoring and cannot be biased (an input that biases it
is stopped with an error). Without NOVELTY nothing of it is computed; with it, it costs a few microseconds a
step (a scan of the few thousand reference points). A model file without a novelty reference works as before,
and refuses NOVELTY saying how to add one.

\par Examples

Well-tempered metadynamics on the first two chart coordinates of a 147-atom gold cluster:

\plumedfile
LOAD FILE=/path/to/libnanochart_plumed.so
cv: RDF_ENCODER MODEL=au147.pt GROUP=1-147 NOPBC
METAD ARG=cv.cv1,cv.cv2 SIGMA=0.05,0.05 HEIGHT=1 PACE=200 BIASFACTOR=20 TEMP=400
PRINT ARG=cv.* STRIDE=100 FILE=COLVAR
\endplumedfile

The same, watching for structures off the chart: `cv.novelty` is printed, and the log warns when it exceeds the
model's threshold, at most once every 5000 steps:

\plumedfile
LOAD FILE=/path/to/libnanochart_plumed.so
cv: RDF_ENCODER MODEL=au147.pt GROUP=1-147 NOPBC NOVELTY NOVELTY_WARN_STRIDE=5000
METAD ARG=cv.cv1,cv.cv2 SIGMA=0.05,0.05 HEIGHT=1 PACE=200 BIASFACTOR=20 TEMP=400
PRINT ARG=cv.cv1,cv.cv2,cv.cv3,cv.novelty STRIDE=100 FILE=COLVAR
\endplumedfile

*/
//+ENDPLUMEDOC

class RdfEncoder : public ActionAtomistic, public ActionWithValue {
 public:
  static void registerKeywords(Keywords& keys);
  explicit RdfEncoder(const ActionOptions& options);

  // Atom derivatives (3 per atom) and the 9 virial entries, as setForcesOnAtoms expects.
  unsigned getNumberOfDerivatives() override { return 3 * getNumberOfAtoms() + 9; }
  void calculate() override;
  void apply() override;

 private:
  void warn_off_chart(double novelty);

  std::unique_ptr<::nanochart::CollectiveVariable> cv_;
  bool nopbc_ = false;
  double to_model_length_ = 1.0;  // model length units per PLUMED length unit
  std::vector<double> positions_, values_, dV_ds_;
  std::vector<double> derivatives_;  // forces on the atoms (3 per atom), then the 9 virial entries
  // NOVELTY: the model's novelty reference (null without NOVELTY: nothing computed) and the
  // state of the rate-limited off-chart warning.
  const ::nanochart::Novelty* novelty_ = nullptr;
  long warn_stride_ = 1000;
  long long last_warning_step_ = 0;
  long off_chart_since_warning_ = 0;
  bool warned_ = false;
};

PLUMED_REGISTER_ACTION(RdfEncoder, "RDF_ENCODER")

void RdfEncoder::registerKeywords(Keywords& keys) {
  Action::registerKeywords(keys);
  ActionAtomistic::registerKeywords(keys);
  ActionWithValue::registerKeywords(keys);
  keys.add("compulsory", "MODEL", "the model file written by nanochart export (TorchScript with nanochart.json)");
  keys.add("atoms", "GROUP", "the atoms of the cluster");
  keys.add("atoms", "ATOMS", "the atoms of the cluster (same as GROUP)");
  keys.addFlag("NOPBC", false, "ignore the periodic box: distances as they are (a cluster in vacuum)");
  keys.add("compulsory", "NUM_THREADS", "1",
           "threads for the RDF pair loops (nanochart's own thread pool) and the encoder (libtorch's)");
  keys.addFlag("SERIAL", false, "do not split the pair loops over MPI ranks");
  keys.add("compulsory", "ENGINE", "auto",
           "who evaluates the encoder: auto (nanochart's own evaluator for nanochart's encoder architecture, "
           "checked against libtorch on load; libtorch for any other model) or libtorch (always)");
  keys.addFlag("NOVELTY", false,
               "add the component novelty (no derivatives: it cannot be biased): how far the structure lies from "
               "the model's training structures on the chart, and a log warning when it is off the chart; needs "
               "a model calibrated by nanochart calibrate-novelty");
  keys.add("compulsory", "NOVELTY_WARN_STRIDE", "1000",
           "with NOVELTY: warn in the log the first time the structure is off the chart, then at most once "
           "every this many steps");
  keys.setComponentsIntroduction(
      "The names of the components in this action are customized: they are the CV names stored in the model "
      "(cv1, cv2, ... unless the model names them otherwise), and novelty with NOVELTY. Components are not "
      "periodic.");
}

RdfEncoder::RdfEncoder(const ActionOptions& options)
    : Action(options), ActionAtomistic(options), ActionWithValue(options) {
  std::string model;
  parse("MODEL", model);
  std::vector<AtomNumber> atoms;
  parseAtomList("GROUP", atoms);
  if (atoms.empty()) parseAtomList("ATOMS", atoms);
  parseFlag("NOPBC", nopbc_);
  int threads = 1;
  parse("NUM_THREADS", threads);
  bool serial = false;
  parseFlag("SERIAL", serial);
  std::string engine;
  parse("ENGINE", engine);
  bool novelty = false;
  parseFlag("NOVELTY", novelty);
  parse("NOVELTY_WARN_STRIDE", warn_stride_);
  checkRead();
  if (warn_stride_ < 1) error("NOVELTY_WARN_STRIDE must be at least 1, got " + std::to_string(warn_stride_));
  if (engine != "auto" && engine != "libtorch") {
    error("ENGINE must be auto or libtorch, got " + engine);
  }
  if (atoms.size() < 2) {
    error("RDF_ENCODER needs at least 2 atoms in GROUP (or ATOMS), got " + std::to_string(atoms.size()));
  }

  ::nanochart::CvOptions cv_options;
  cv_options.num_threads = threads;
  cv_options.engine = engine == "libtorch" ? ::nanochart::EncoderEngine::kLibtorch : ::nanochart::EncoderEngine::kAuto;
  if (!serial && comm.Get_size() > 1) {
    cv_options.partition = {comm.Get_rank(), comm.Get_size()};
    cv_options.sum_over_ranks = [this](double* data, size_t count) { comm.Sum(data, count); };
  }
  try {
    ::nanochart::PythonLockRelease no_python_lock;  // loading runs libtorch autograd (encoder.h)
    cv_ = std::make_unique<::nanochart::CollectiveVariable>(model, cv_options);
  } catch (const ::nanochart::Error& e) {
    error(std::string("cannot use the model: ") + e.what());
  }

  const auto& meta = cv_->metadata();
#if NANOCHART_PLUMED_VERSION < 210
  const Units& units = plumed.getAtoms().getUnits();
#else
  const Units& units = getUnits();
#endif
  to_model_length_ = units.getLength() / meta.length_unit_in_nm();
  log.printf("  model %s: %zu CVs, trained on %ld atoms of", model.c_str(), meta.cv_names.size(),
             static_cast<long>(meta.n_atoms));
  for (const auto& element : meta.elements) log.printf(" %s", element.c_str());
  log.printf("\n  RDF r = %g..%g %s, %ld bins, sigma %g, kernels cut at %g sigma\n", meta.rdf.r_min, meta.rdf.r_max,
             meta.rdf.length_unit.c_str(), static_cast<long>(meta.rdf.n_bins), meta.rdf.sigma, meta.rdf.cutoff_sigmas);
  log.printf("  %zu atoms; PLUMED lengths times %g give %s; %s; %d thread(s)", atoms.size(), to_model_length_,
             meta.rdf.length_unit.c_str(), nopbc_ ? "no periodic boundaries" : "minimum image", threads);
  if (cv_options.partition.size > 1) log.printf("; pairs split over %d MPI ranks", cv_options.partition.size);
  log.printf("\n  encoder engine: %s\n", cv_->engine().c_str());
  if (static_cast<int64_t>(atoms.size()) != meta.n_atoms) {
    warning("the model was trained on clusters of " + std::to_string(meta.n_atoms) + " atoms; this group has " +
            std::to_string(atoms.size()) + ": its CVs are extrapolated");
  }
  for (const auto& name : meta.cv_names) {
    addComponent(name);
    componentIsNotPeriodic(name);
  }
  if (novelty) {
    try {
      novelty_ = &cv_->novelty();
    } catch (const ::nanochart::Error& e) {
      error(std::string("NOVELTY: ") + e.what());
    }
    for (const auto& name : meta.cv_names) {
      if (name == "novelty") error("NOVELTY: the model already has a CV named novelty");
    }
    addComponent("novelty");
    componentIsNotPeriodic("novelty");
    log.printf(
        "  novelty: mean distance to the %ld nearest of %ld training structures' CVs over %g; off the chart "
        "above %g; warnings at most every %ld steps\n",
        static_cast<long>(novelty_->k), static_cast<long>(novelty_->n_reference()), novelty_->scale,
        novelty_->threshold, warn_stride_);
  }
  requestAtoms(atoms);
  const size_t n = atoms.size();
  positions_.resize(3 * n);
  derivatives_.resize(3 * n + 9);
  values_.resize(meta.cv_names.size());
  dV_ds_.resize(meta.cv_names.size());
}

void RdfEncoder::calculate() {
  const auto& positions = getPositions();
  for (size_t i = 0; i < positions.size(); ++i) {
    for (int a = 0; a < 3; ++a) positions_[3 * i + a] = positions[i][a] * to_model_length_;
  }
  ::nanochart::Box box;
  if (!nopbc_ && getPbc().isSet()) {
    const Tensor& cell = getPbc().getBox();
    std::array<double, 9> rows{};
    for (int i = 0; i < 3; ++i) {
      for (int j = 0; j < 3; ++j) rows[3 * i + j] = cell(i, j) * to_model_length_;
    }
    try {
      box = ::nanochart::Box(rows);
    } catch (const ::nanochart::Error& e) {
      error(e.what());
    }
  }
  try {
    // Records what the backward pass needs only when some action wants derivatives of the CVs
    // (a bias, --debug-forces): apply() then runs one backward pass on these positions.
    cv_->calculate(positions_.data(), static_cast<int64_t>(positions.size()), box, values_.data(),
                   !doNotCalculateDerivatives());
  } catch (const ::nanochart::Error& e) {
    error(e.what());
  }
  for (unsigned d = 0; d < values_.size(); ++d) getPntrToComponent(d)->set(values_[d]);
  if (novelty_ != nullptr) {
    const double score = novelty_->score(values_.data());
    getPntrToComponent(values_.size())->set(score);
    if (novelty_->off_chart(score)) warn_off_chart(score);
  }
}

void RdfEncoder::warn_off_chart(double novelty) {
  ++off_chart_since_warning_;
  const long long step = getStep();
  if (warned_ && step - last_warning_step_ < warn_stride_) return;
  char text[320];
  std::snprintf(text, sizeof text,
                "step %lld: the structure is off the chart (novelty %.3g above the model's threshold %.3g; %ld "
                "off-chart step(s) since the last warning): its CVs are extrapolated, a bias acting on them is not "
                "to be trusted",
                step, novelty, novelty_->threshold, off_chart_since_warning_);
  warning(text);
  warned_ = true;
  last_warning_step_ = step;
  off_chart_since_warning_ = 0;
}

void RdfEncoder::apply() {
  if (doNotCalculateDerivatives()) return;  // nothing was recorded, and nothing acts on the CVs
  if (novelty_ != nullptr && getPntrToComponent(values_.size())->getForce() != 0.0) {
    error("the novelty component has no derivatives and cannot be biased: bias the CV components");
  }
  bool any = false;
  for (unsigned d = 0; d < values_.size(); ++d) {
    // PLUMED's force on a value is -dV/ds, and zero when no bias acts on it (PLUMED 2.9 and
    // 2.10 alike clear it every step); all zero means no backward pass at all.
    dV_ds_[d] = -getPntrToComponent(d)->getForce();
    any = any || dV_ds_[d] != 0.0;
  }
  if (!any) return;
  const size_t n3 = derivatives_.size() - 9;
  try {
    ::nanochart::PythonLockRelease no_python_lock;  // the backward pass may run libtorch autograd
    cv_->apply_bias(dV_ds_.data(), derivatives_.data(), derivatives_.data() + n3);
  } catch (const ::nanochart::Error& e) {
    error(e.what());
  }
  // Forces are per model length unit: per PLUMED length unit they are to_model_length_ times
  // larger. The virial, dV/d(strain), is an energy and needs no conversion.
  for (size_t i = 0; i < n3; ++i) derivatives_[i] *= to_model_length_;
  unsigned index = 0;
  setForcesOnAtoms(derivatives_, index);
}

}  // namespace nanochart_cv
}  // namespace PLMD
