// What predict, generate and latents share: a fitted model opened from a checkpoint, with the options it was
// fitted with as their defaults; the subjects it is applied to (a data file's, or the copies a checkpoint
// written with --copy-data holds); and each subject's model and parameters.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "mslr/app/options.h"
#include "mslr/comm/communicator.h"
#include "mslr/data/subject_data.h"
#include "mslr/io/checkpoint.h"
#include "mslr/model/subject_model.h"

namespace mslr {

class DataFile;

// The options that say which model and which data: checkpoint, data, dtype, and min-var and seed for the
// subjects the fit never saw; then the split, runtime and model options.
std::vector<OptionDecl> fitted_model_options(std::vector<OptionDecl> own);

// Parses a command's options twice: alone (to know what the command line gave) and over the checkpoint's
// saved config. Returns false when --help was answered. Requires --checkpoint and --out.
struct FittedModelOptions {
  FittedModelOptions(const std::string& command, const std::string& summary, std::vector<OptionDecl> decls)
      : given(command, summary, decls), options(command, summary, decls) {}
  Options given, options;
};

class FittedModel {
 public:
  // Collective. Opens the checkpoint (`o.given`'s --checkpoint), parses `o.options` over its saved config,
  // and opens the subjects' data: --data when the command line gives it, else the checkpoint's copies when it
  // has them, else the data file the fit used.
  FittedModel(FittedModelOptions& o, const std::vector<std::string>& args, const Communicator& world);
  ~FittedModel();

  const CheckpointFile& checkpoint() const { return *ckpt_; }
  const ModelSpec& spec() const { return spec_; }
  const Split& split() const { return split_; }
  at::ScalarType dtype() const { return dtype_; }
  const std::vector<SubjectInfo>& subjects() const { return infos_; }
  bool in_fit(int s) const { return in_fit_[s]; }
  // Whether the data comes from the checkpoint's copies; the file it comes from (absolute when it exists).
  bool from_checkpoint() const { return !file_; }
  std::string data_path() const;
  // The subjects --subjects names (names or indices; all when not given), in file order.
  std::vector<int> select() const;

  // Subject s, on the rank that asks: its data (time points [0, rows) at least, -1 for all; host), its model
  // with its given modes set, and its parameters: those fitted, or for a subject the fit never saw, estimated
  // from its training part (estimate_unfitted_params); the model and parameters on the subject's device, with
  // the shared parameters there.
  struct Subject {
    const SubjectModel* model = nullptr;
    SubjectData data;
    at::Tensor params;
    at::Tensor shared_params;
  };
  Subject subject(int s, int64_t rows) const;
  const at::Tensor& shared_params() const { return shared_params_; }
  // Where the subjects run: the CPU, or with --gpus-per-rank G (predict only) the rank's G GPUs, subject s on
  // the (s mod G)-th.
  const std::vector<at::Device>& devices() const { return devices_; }

 private:
  std::unique_ptr<CheckpointFile> ckpt_;
  const Options* options_;
  ModelSpec spec_;
  Split split_;
  at::ScalarType dtype_ = at::kFloat;
  std::unique_ptr<DataFile> file_;
  std::vector<int> copies_;  // checkpoint index of each subject, when read from its copies
  std::vector<SubjectInfo> infos_;
  std::vector<bool> in_fit_;
  std::unique_ptr<SharedModules> shared_;
  std::vector<std::unique_ptr<SubjectModel>> models_;
  at::Tensor shared_params_;
  std::vector<at::Device> devices_{at::Device(at::kCPU)};
  std::vector<at::Tensor> shared_on_;  // the shared parameters on each device
};

}  // namespace mslr
