// Checkpoints (docs/DESIGN.md §5): one HDF5 file each, written collectively by all ranks, visible under its
// final name only when complete.
//
//   /                                        attrs format="mslr-checkpoint", version=1, epoch, batch,
//                                            world_size, adam_lr, elapsed, config (the resolved config text),
//                                            model (its model section), complete=1 (written last)
//   /shared/params|adam_m|adam_v             [P]    attrs adam_step, param_names, param_shapes, param_offsets
//   /subjects/<name>/params|adam_m|adam_v    [P_s]  attrs index, fitted, param_names, param_shapes,
//                                                   param_offsets
//   /subjects/<name>/adam_step, partial_nll  scalars
//   /subjects/<name>/modes/p.<group>|u.<group>   [d, k] the predicted and given modes the fitted model uses
//   /subjects/<name>/props/<group>, groups/<group>, segments   copies of the data (on request), so that a
//                                                              checkpoint alone can predict
//   /subjects/<name>/split                   int64 [1 + k_train + k_test, 2]: (k_train, k_test), then the
//                                            train and the test ranges (with the data, when the subject has
//                                            its own split)
//   /log/epoch, elapsed, objective, lr [E];  /log/subject_nll [E, F];  /log/fitted [F] (subject indices)
//
// Every rank creates every group, dataset and attribute with the same arguments (parallel HDF5 metadata is
// collective); each rank then writes only its own subjects' datasets; rank 0 writes the shared ones and the
// log.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mslr/comm/communicator.h"
#include "mslr/data/subject_data.h"
#include "mslr/model/fit_state.h"
#include "mslr/model/params.h"
#include "mslr/model/subject_model.h"

namespace mslr {

// An extra dataset of a subject (modes, copied props or data): its path under /subjects/<name>/ and shape.
struct ExtraDataset {
  std::string path;
  std::vector<int64_t> shape;
  at::ScalarType dtype = at::kFloat;
};

// What a subject's entry holds besides its parameters and Adam state (its "extras"), in one place: the
// layout is built, filled and read back only here.
struct ExtrasRequest {
  bool props = false;  // props/<group>: --copy-props
  bool data = false;   // groups/<group>, segments and split: --copy-data
};
// The extra datasets of a fitted subject: modes/<slot name> for each of its model's predicted or given slots,
// then the copies asked for of the groups the model reads.
std::vector<ExtraDataset> subject_extras_layout(const SubjectModel& model, const SubjectInfo& info,
                                                const ExtrasRequest& request, at::ScalarType dtype);
// Their values, by path: the predicted modes by name (Fitter::predicted_modes), the data the fit holds and
// the subject's own split.
std::map<std::string, at::Tensor> subject_extras(const std::map<std::string, at::Tensor>& modes,
                                                 const SubjectData& held, const SubjectInfo& info,
                                                 const ExtrasRequest& request);
// What a checkpoint's extras of one subject hold, read back (empty maps where nothing was kept).
struct SubjectExtras {
  std::map<std::string, at::Tensor> modes;   // by mode name, [d, k]
  std::map<std::string, at::Tensor> props;   // by group, [d, n_props]
  std::map<std::string, at::Tensor> groups;  // by group, [T, d]
  at::Tensor segments;                       // [k, 2] int64, or undefined
  bool has_split = false;
  TimeRanges train_ranges, test_ranges;

  // The copied data as a data file's reader would give it.
  SubjectData data(const std::string& name) const;
};

// What every rank knows about a checkpoint before writing it (identical on all ranks).
struct CheckpointHeader {
  std::string config;  // the resolved configuration, as text
  std::string model;   // the model section of it: a resume with another model is refused
  ParamLayout shared_layout;
  std::vector<SubjectInfo> subjects;              // every subject, in data-file order
  std::vector<ParamLayout> subject_layouts;       // per subject
  std::vector<std::vector<ExtraDataset>> extras;  // per subject
};

// Writes this rank's part of a checkpoint. `extras` holds, for this rank's subjects, the tensors of the extra
// datasets by subject index and path. Collective: the file is created as `path + ".tmp"`, completed, closed,
// flushed to disk and renamed to `path` by rank 0 after every rank has finished; only then does any rank
// return. Throws on every rank (and leaves no file under `path`) when anything fails, e.g. an unwritable
// directory.
void write_checkpoint(const std::string& path, const Communicator& comm, const CheckpointHeader& header,
                      const FitState& state, const std::map<int, std::map<std::string, at::Tensor>>& extras);

// Makes `link` (e.g. run/checkpoints/latest) point at `target` atomically (a new link renamed over the old).
void point_link(const std::string& link, const std::string& target);

// Deletes the oldest "epoch-*.h5" checkpoints in `dir` beyond the newest `keep` (never the target of
// `latest`).
void prune_checkpoints(const std::string& dir, int keep);

// A checkpoint opened for reading (collective).
class CheckpointFile {
 public:
  // `path`: a checkpoint file, a checkpoints folder (its `latest`), or a run folder (its checkpoints/latest).
  // Throws naming the path when there is no complete checkpoint there, or the file is not an mslr checkpoint
  // of this version.
  CheckpointFile(const std::string& path, const Communicator& comm);
  ~CheckpointFile();

  const std::string& path() const { return path_; }  // the file actually opened
  const std::string& config() const { return config_; }
  const std::string& model() const { return model_; }
  int epoch() const { return epoch_; }
  int world_size() const { return world_size_; }
  const ParamLayout& shared_layout() const { return shared_layout_; }
  const std::vector<std::string>& subject_names() const { return names_; }
  int index_of(const std::string& subject) const;  // -1 when absent
  const ParamLayout& subject_layout(int i) const { return subject_layouts_[i]; }
  bool subject_fitted(int i) const { return fitted_[i]; }  // false: held at its starting values, never fitted

  // Checks that the checkpoint was written for this model (same model text and parameter layouts), naming the
  // first difference.
  void check_model(const std::string& model, const ParamLayout& shared,
                   const std::vector<std::pair<std::string, const ParamLayout*>>& subjects) const;
  // The state for resuming: shared parameters, log and position for everyone, and the subjects `mine`
  // (checkpoint subject positions) with their Adam state. Independent reads.
  FitState read_state(const std::vector<int>& mine) const;
  // One subject's parameters (no Adam state), e.g. for prediction.
  at::Tensor read_subject_params(int i) const;
  at::Tensor read_shared_params() const;
  // Subject i's extras (see subject_extras_layout), every shape checked. Independent reads.
  SubjectExtras read_extras(int i) const;
  // Whether subject i's data was copied into the checkpoint (--copy-data), so that it predicts from it alone.
  bool has_data_copy(int i) const;
  // What a data file would say of subject i, from its copy (shapes, segments and split; the data is read by
  // read_extras). Throws when nothing of its data was copied.
  SubjectInfo describe_copy(int i) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::string path_, config_, model_;
  int epoch_ = 0, world_size_ = 0;
  ParamLayout shared_layout_;
  std::vector<std::string> names_;
  std::vector<ParamLayout> subject_layouts_;
  std::vector<bool> fitted_;
};

// The checkpoint file a path refers to (see CheckpointFile), or throws naming what was looked for.
std::string resolve_checkpoint(const std::string& path);
// `path` itself when it is a file, else the checkpoint a folder refers to.
std::string resolve_checkpoint_or_file(const std::string& path);

}  // namespace mslr
