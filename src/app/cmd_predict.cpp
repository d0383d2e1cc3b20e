// mslr predict: a distributed prediction pass. Every rank predicts its subjects' samples in batches and the
// outputs are gathered into one predictions file. Subjects the fit never saw get their modes from their
// properties through the fitted predictors.
#include <cstdlib>

#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/app/console.h"
#include "mslr/app/model_config.h"
#include "mslr/comm/placement.h"
#include "mslr/core/error.h"
#include "mslr/fit/fitter.h"
#include "mslr/fit/predict.h"
#include "mslr/io/checkpoint.h"
#include "mslr/io/data_file.h"
#include "mslr/io/paths.h"
#include "mslr/io/predictions.h"

namespace mslr {
namespace {

std::vector<OptionDecl> predict_options() {
  return with(
      {
          {"checkpoint", "", "checkpoint file or run folder (its checkpoints/latest)"},
          {"data", "",
           "mslr-data file to predict (default: the data copied into the checkpoint by fit --copy-data, else "
           "the file the fit used)"},
          {"out", "", "predictions file to write"},
          {"split", "test", "which samples: test, train or all"},
          {"batch-size", "1000", "samples predicted at a time"},
          {"min-var", default_text(FitOptions{}.min_var),
           "lower bound on psi estimated for subjects the fit never saw"},
          {"seed", default_text(FitOptions{}.seed),
           "seed of the starting values of subjects the fit never saw"},
          {"dtype", "float32", "float32 or float64 (default: as the fit)"},
      },
      {split_options(), runtime_options(), model_options()});
}

// The subjects predict reads: those of a data file, or, from a checkpoint written with --copy-data when no
// --data is given, the fitted subjects' copies in the checkpoint (no data file is opened).
class PredictSubjects {
 public:
  PredictSubjects(const Options& given, const Options& o, const CheckpointFile& ckpt,
                  const Communicator& world)
      : ckpt_(ckpt) {
    run_collectively(world, [&] {
      if (given.given("data")) return;
      for (size_t k = 0; k < ckpt.subject_names().size(); ++k)
        if (ckpt.has_data_copy(static_cast<int>(k))) {
          copies_.push_back(static_cast<int>(k));
          infos_.push_back(ckpt.describe_copy(static_cast<int>(k)));
        }
    });
    if (!copies_.empty()) return;
    if (!o.has("data"))
      throw UsageError(
          "mslr predict: --data is required (the checkpoint names no data file and holds no copy)");
    file_ = std::make_unique<DataFile>(o.str("data"), world);
    infos_ = file_->subjects();
  }

  const std::vector<SubjectInfo>& infos() const { return infos_; }
  bool from_checkpoint() const { return !file_; }
  // The file the data comes from: the data file, or the checkpoint itself.
  std::string path() const { return file_ ? file_->path() : ckpt_.path(); }
  SubjectData read(int s, const DataReadOptions& r) const {
    return file_ ? file_->read(s, r) : ckpt_.read_extras(copies_[s]).data(infos_[s].name);
  }

 private:
  const CheckpointFile& ckpt_;
  std::unique_ptr<DataFile> file_;
  std::vector<int> copies_;  // checkpoint index of each subject, when read from the checkpoint
  std::vector<SubjectInfo> infos_;
};

}  // namespace

int cmd_predict(const Args& args, const MpiCommunicator& world) {
  const char* summary =
      "Predicts the output groups' means for the samples of a data file with a fitted model, in parallel "
      "over\n"
      "ranks, and writes them with the NLL of the data to one predictions file.";
  Options first("predict", summary, predict_options());
  if (!first.parse(args)) return kExitOk;
  if (!first.has("checkpoint"))
    throw UsageError("mslr predict: --checkpoint is required (see mslr predict --help)");
  if (!first.has("out")) throw UsageError("mslr predict: --out is required (see mslr predict --help)");
  if (first.given("gpus-per-rank") && first.integer("gpus-per-rank") != 0)
    throw UsageError(
        "mslr predict: --gpus-per-rank: prediction runs on the CPU in this version; leave it at 0");
  CheckpointFile ckpt(first.str("checkpoint"), world);
  // The fit's own settings (model, data file, split) are the defaults.
  Options o("predict", summary, predict_options());
  o.parse(args, ckpt.config(), ckpt.path() + ": the saved config");
  const Console console(world.is_root(), o.flag("quiet"));
  apply_threads(o, world);
  const ModelSpec spec = model_from_options(o);
  const Split split = split_from(o);
  const std::string which = o.str("split");
  if (which != "test" && which != "train" && which != "all")
    throw UsageError("mslr predict: --split: '" + which + "' is not test, train or all");
  if (o.integer("seed") < 0) throw UsageError("mslr predict: --seed must be >= 0, got " + o.str("seed"));
  const int64_t batch = o.integer("batch-size");
  if (batch < 1) throw UsageError("mslr predict: --batch-size must be >= 1");
  const PredictSubjects data(first, o, ckpt, world);
  run_collectively(world, [&] {
    check_output_file(o.str("out"), "--out", {data.path(), ckpt.path()},
                      {"mslr-predictions", "", "an mslr predictions file"});
  });
  const auto& infos = data.infos();
  auto range_of = [&](const SubjectInfo& i) {
    if (which == "train") return split.train(i);
    if (which == "all") return TimeRanges{{0, i.n_time}};
    return split.test(i);
  };

  std::unique_ptr<SharedModules> shared;
  std::vector<std::unique_ptr<SubjectModel>> models;
  PredictionsHeader header;
  header.checkpoint = ckpt.path();
  char* full = ::realpath(data.path().c_str(), nullptr);
  header.data = full ? full : data.path();
  std::free(full);
  header.split = which + " (" + split.describe() + ")";
  header.config = o.resolved();
  std::vector<double> cost;
  run_collectively(world, [&] {
    shared = std::make_unique<SharedModules>(spec, property_counts(infos));
    std::vector<std::pair<std::string, const ParamLayout*>> fitted;
    for (const auto& i : infos) {
      models.push_back(std::make_unique<SubjectModel>(*shared, shape_of(i), i.name));
      const int k = ckpt.index_of(i.name);
      const bool in_fit = k >= 0 && ckpt.subject_fitted(k);
      if (in_fit) fitted.emplace_back(i.name, &models.back()->layout());
      PredictionsHeader::Subject s;
      s.name = i.name;
      s.samples = i.times_in(range_of(i)).numel();
      s.in_fit = in_fit;
      for (const auto& h : spec.outputs)
        s.outputs.emplace_back(h.group, i.widths.at(h.group));
      header.subjects.push_back(s);
      cost.push_back(subject_cost(spec, i, range_of(i)));
    }
    ckpt.check_model(model_text(o), shared->layout(), fitted);
  });
  const Placement placement = place_subjects(cost, world.size(), 1);
  const at::ScalarType dtype = o.str("dtype") == "float64" ? at::kDouble : at::kFloat;
  at::Tensor shared_params;
  run_collectively(world, [&] { shared_params = ckpt.read_shared_params().to(dtype); });
  std::map<int, SubjectPredictionData> mine;
  int unseen = 0;
  run_collectively(world, [&] {
    for (int s : placement.subjects_of(world.rank())) {
      const SubjectInfo& info = infos[s];
      const SubjectModel& model = *models[s];
      const TimeRanges range = range_of(info);
      DataReadOptions r;
      const auto groups = spec.groups();
      r.groups = {groups.begin(), groups.end()};
      const int k = ckpt.index_of(info.name);
      const bool in_fit = header.subjects[s].in_fit;
      r.rows = std::max(end_of(range), in_fit ? int64_t{0} : end_of(split.train(info)));
      const SubjectData d = data.read(s, r);
      models[s]->set_given(d.modes);
      models[s]->to(at::TensorOptions().dtype(dtype));
      at::Tensor params;
      if (in_fit) {
        params = ckpt.read_subject_params(k).to(dtype);
      } else {
        // A subject the fit never saw: modes from its properties, offsets and noise from its training part.
        params = estimate_unfitted_params(model, shared_params, d, info.times_in(split.train(info)),
                                          o.number("min-var"), static_cast<uint64_t>(o.integer("seed")));
        ++unseen;
      }
      const at::Tensor times = info.times_in(range);
      const SubjectPrediction p = predict_subject(model, params, shared_params, d, times, batch);
      SubjectPredictionData out;
      out.times = times;
      out.nll = p.nll;
      for (int h = 0; h < model.n_outputs(); ++h)
        out.means[spec.outputs[h].group] = p.means[h];
      mine[s] = std::move(out);
    }
  });
  write_predictions(o.str("out"), world, header, mine);
  const int64_t unseen_all = world.sum(unseen);
  console.line(cat(
      "predicted ", infos.size(), " subjects (", unseen_all, " not in the fit) on ", world.size(), " rank(s)",
      data.from_checkpoint() ? " from the data copied into the checkpoint" : "", ": ", o.str("out")));
  return kExitOk;
}

}  // namespace mslr
