#include "mslr/app/fitted_model.h"

#include <algorithm>
#include <cstdlib>

#include "mslr/app/commands.h"
#include "mslr/app/fit_config.h"
#include "mslr/app/model_config.h"
#include "mslr/core/error.h"
#include "mslr/fit/fitter.h"
#include "mslr/fit/predict.h"
#include "mslr/io/data_file.h"

namespace mslr {

std::vector<OptionDecl> fitted_model_options(std::vector<OptionDecl> own) {
  std::vector<OptionDecl> decls = {
      {"checkpoint", "", "checkpoint file or run folder (its checkpoints/latest)"},
      {"data", "",
       "mslr-data file (default: the data copied into the checkpoint by fit --copy-data, else the file the "
       "fit used)"},
      {"dtype", "float32", "float32 or float64"},
      {"min-var", default_text(FitOptions{}.min_var),
       "lower bound on psi estimated for subjects the fit never saw"},
      {"seed", default_text(FitOptions{}.seed), "seed of the starting values of subjects the fit never saw"},
  };
  decls.insert(decls.end(), own.begin(), own.end());
  return with(decls, {split_options(), runtime_options(), model_options()});
}

FittedModel::FittedModel(FittedModelOptions& fo, const std::vector<std::string>& args,
                         const Communicator& world)
    : options_(&fo.options) {
  const Options& given = fo.given;
  Options& o = fo.options;
  const std::string& command = given.command();
  if (!given.has("checkpoint"))
    throw UsageError("mslr " + command + ": --checkpoint is required (see mslr " + command + " --help)");
  if (!given.has("out"))
    throw UsageError("mslr " + command + ": --out is required (see mslr " + command + " --help)");
  const int64_t gpus = given.given("gpus-per-rank") ? given.integer("gpus-per-rank") : 0;
  if (gpus != 0 && command != "predict")
    throw UsageError("mslr " + command + ": --gpus-per-rank: " + command +
                     " runs on the CPU in this version; leave it at 0");
  if (gpus < 0 || gpus > 64) throw UsageError("mslr " + command + ": --gpus-per-rank must be in 0..64");
  ckpt_ = std::make_unique<CheckpointFile>(given.str("checkpoint"), world);
  // The fit's own settings (model, data file, split) are the defaults.
  o.parse(args, ckpt_->config(), ckpt_->path() + ": the saved config");
  spec_ = model_from_options(o);
  split_ = split_from(o);
  if (o.integer("seed") < 0)
    throw UsageError("mslr " + command + ": --seed must be >= 0, got " + o.str("seed"));
  const std::string dtype = o.str("dtype");
  if (dtype != "float32" && dtype != "float64")
    throw UsageError("mslr " + command + ": --dtype: '" + dtype + "' is not float32 or float64");
  dtype_ = dtype == "float64" ? at::kDouble : at::kFloat;

  run_collectively(world, [&] {
    if (given.given("data")) return;
    for (size_t k = 0; k < ckpt_->subject_names().size(); ++k)
      if (ckpt_->has_data_copy(static_cast<int>(k))) {
        copies_.push_back(static_cast<int>(k));
        infos_.push_back(ckpt_->describe_copy(static_cast<int>(k)));
      }
  });
  if (copies_.empty()) {
    if (!o.has("data"))
      throw UsageError("mslr " + command +
                       ": --data is required (the checkpoint names no data file and holds no copy)");
    file_ = std::make_unique<DataFile>(o.str("data"), world);
    infos_ = file_->subjects();
  }
  run_collectively(world, [&] {
    shared_ = std::make_unique<SharedModules>(spec_, property_counts(infos_));
    std::vector<std::pair<std::string, const ParamLayout*>> fitted;
    for (const auto& i : infos_) {
      models_.push_back(std::make_unique<SubjectModel>(*shared_, shape_of(i), i.name));
      const int k = ckpt_->index_of(i.name);
      in_fit_.push_back(k >= 0 && ckpt_->subject_fitted(k));
      if (in_fit_.back()) fitted.emplace_back(i.name, &models_.back()->layout());
    }
    ckpt_->check_model(model_text(o), shared_->layout(), fitted);
    shared_params_ = ckpt_->read_shared_params().to(dtype_);
  });
  if (gpus > 0) devices_ = rank_devices(world, static_cast<int>(gpus));  // collective
  for (const at::Device& d : devices_)
    shared_on_.push_back(shared_params_.to(d));
}

FittedModel::~FittedModel() = default;

std::string FittedModel::data_path() const {
  const std::string path = file_ ? file_->path() : ckpt_->path();
  char* full = ::realpath(path.c_str(), nullptr);
  const std::string out = full ? full : path;
  std::free(full);
  return out;
}

std::vector<int> FittedModel::select() const {
  std::vector<int> out = subjects_from(*options_, infos_, data_path());
  if (out.empty())
    for (size_t i = 0; i < infos_.size(); ++i)
      out.push_back(static_cast<int>(i));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

FittedModel::Subject FittedModel::subject(int s, int64_t rows) const {
  const SubjectInfo& info = infos_[s];
  Subject out;
  SubjectModel& model = *models_[s];
  out.model = &model;
  DataReadOptions r;
  const auto groups = spec_.groups();
  r.groups = {groups.begin(), groups.end()};
  r.rows = rows < 0 ? -1 : std::max(rows, in_fit_[s] ? int64_t{0} : end_of(split_.train(info)));
  out.data = file_ ? file_->read(s, r) : ckpt_->read_extras(copies_[s]).data(info.name);
  model.set_given(out.data.modes);
  // On the host first: an unfitted subject's estimate runs there.
  model.to(at::TensorOptions().dtype(dtype_));
  if (in_fit_[s]) {
    out.params = ckpt_->read_subject_params(ckpt_->index_of(info.name)).to(dtype_);
  } else {
    // A subject the fit never saw: modes from its properties, the rest from its training part.
    out.params = estimate_unfitted_params(model, shared_params_, out.data, info.times_in(split_.train(info)),
                                          options_->number("min-var"),
                                          static_cast<uint64_t>(options_->integer("seed")));
  }
  const size_t d = static_cast<size_t>(s) % devices_.size();
  if (!devices_[d].is_cpu()) {
    model.to(at::TensorOptions().dtype(dtype_).device(devices_[d]));
    out.params = out.params.to(devices_[d]);
  }
  out.shared_params = shared_on_[d];
  return out;
}

}  // namespace mslr
