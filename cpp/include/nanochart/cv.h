// The collective variable: positions -> RDF -> encoder -> CVs, with bias forces and virial.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nanochart/box.h"
#include "nanochart/encoder.h"
#include "nanochart/rdf.h"

namespace nanochart {

struct CvOptions {
  // Threads for the RDF (the core's own pool) and the encoder (libtorch's intra-op threads, set
  // for each call and put back after it). Default 1: inside MD the engine owns the cores.
  int num_threads = 1;
  // kAuto evaluates nanochart's own encoder architecture with the core's evaluator (checked
  // against libtorch on load); kLibtorch always uses libtorch.
  EncoderEngine engine = EncoderEngine::kAuto;
  // Which pairs this process owns, and how to sum a buffer over the processes that share the
  // group (an MPI allreduce). Without sum_over_ranks the CV runs alone.
  PairPartition partition;
  std::function<void(double* data, size_t count)> sum_over_ranks;
};

class CollectiveVariable {
 public:
  // Throws FileError or ModelError (see Encoder), InputError for bad options.
  explicit CollectiveVariable(const std::string& model_path, CvOptions options = {});
  ~CollectiveVariable();

  const ModelMetadata& metadata() const { return encoder_.metadata(); }
  const Rdf& rdf() const { return rdf_; }
  int64_t n_cvs() const { return encoder_.n_cvs(); }
  int num_threads() const { return options_.num_threads; }
  const std::string& engine() const { return encoder_.engine(); }

  // The model's novelty reference (nanochart.json "novelty"): how far a structure's CVs lie from
  // the training structures'. novelty() throws ModelError, saying how to add one, for a model
  // file without it.
  bool has_novelty() const { return metadata().novelty.has_value(); }
  const Novelty& novelty() const;

  // values (n_cvs) for positions (n_atoms x 3) in the model's length unit. With
  // record_gradients the RDF and the encoder graph are kept for apply_bias() or jacobian().
  void calculate(const double* positions, int64_t n_atoms, const Box& box, double* values,
                 bool record_gradients = true);

  // After calculate(): forces = -sum_d dV/ds_d ds_d/dx (n_atoms x 3) and the bias virial in
  // PLUMED's convention, -sum_d dV/ds_d B_d = dV/d(epsilon) (3 x 3). One encoder backward pass;
  // none at all, and false returned, when every dV/ds_d is zero.
  bool apply_bias(const double* dV_ds, double* forces, double* virial);

  // After calculate(): jacobian (n_cvs x n_atoms x 3) = ds_d/dx and box_derivatives
  // (n_cvs x 3 x 3) = B_d = -ds_d/d(epsilon), PLUMED's box derivative of each CV.
  void jacobian(double* jacobian, double* box_derivatives);

  // values (batch x n_cvs) of a batch of structures (batch x n_atoms x 3) sharing one box, in
  // one encoder call and without derivatives: the fast path for featurising trajectories.
  void values(const double* positions, int64_t batch, int64_t n_atoms, const Box& box, double* out);

 private:
  void backpropagate(const double* dV_dg, double* dV_dx, double* dV_dstrain);

  CvOptions options_;
  Encoder encoder_;
  Rdf rdf_;
  // State of the last calculate(), needed by the backward passes.
  std::vector<double> positions_;
  int64_t n_atoms_ = 0;
  Box box_;
  RdfRecord rdf_record_;  // the pairs of the last calculate(), unless there were too many
  bool recorded_ = false;
};

}  // namespace nanochart
