// mslr predict: a distributed prediction pass. Every rank predicts its subjects' samples in batches and the
// outputs are gathered into one predictions file. Subjects the fit never saw get their modes from their
// properties through the fitted predictors.
#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/app/console.h"
#include "mslr/app/fitted_model.h"
#include "mslr/comm/placement.h"
#include "mslr/core/error.h"
#include "mslr/fit/fitter.h"
#include "mslr/fit/predict.h"
#include "mslr/io/paths.h"
#include "mslr/io/predictions.h"

namespace mslr {

int cmd_predict(const Args& args, const MpiCommunicator& world) {
  FittedModelOptions fo(
      "predict",
      "Predicts the output groups' means for the samples of a data file with a fitted model, in parallel over\n"
      "ranks, and writes them with the NLL of the data to one predictions file.",
      fitted_model_options({
          {"out", "", "predictions file to write"},
          {"split", "test", "which samples: test, train or all"},
          {"batch-size", "1000", "samples predicted at a time"},
      }));
  if (!fo.given.parse(args)) return kExitOk;
  const FittedModel fitted(fo, args, world);
  const Options& o = fo.options;
  const Console console(world.is_root(), o.flag("quiet"));
  apply_threads(o, world);
  const std::string which = o.str("split");
  if (which != "test" && which != "train" && which != "all")
    throw UsageError("mslr predict: --split: '" + which + "' is not test, train or all");
  const int64_t batch = o.integer("batch-size");
  if (batch < 1) throw UsageError("mslr predict: --batch-size must be >= 1");
  run_collectively(world, [&] {
    check_output_file(o.str("out"), "--out", {fitted.data_path(), fitted.checkpoint().path()},
                      {"mslr-predictions", "", "an mslr predictions file"});
  });
  const ModelSpec& spec = fitted.spec();
  const Split& split = fitted.split();
  const auto& infos = fitted.subjects();
  auto range_of = [&](const SubjectInfo& i) {
    if (which == "train") return split.train(i);
    if (which == "all") return TimeRanges{{0, i.n_time}};
    return split.test(i);
  };

  PredictionsHeader header;
  header.checkpoint = fitted.checkpoint().path();
  header.data = fitted.data_path();
  header.split = which + " (" + split.describe() + ")";
  header.config = o.resolved();
  std::vector<double> cost;
  run_collectively(world, [&] {
    for (size_t s = 0; s < infos.size(); ++s) {
      const SubjectInfo& i = infos[s];
      PredictionsHeader::Subject h;
      h.name = i.name;
      h.samples = i.times_in(range_of(i)).numel();
      h.in_fit = fitted.in_fit(static_cast<int>(s));
      for (const auto& out : spec.outputs)
        h.outputs.emplace_back(out.group, i.widths.at(out.group));
      header.subjects.push_back(h);
      cost.push_back(subject_cost(spec, i, range_of(i), kSubjectCostCpu));
    }
  });
  const Placement placement = place_subjects(cost, world.size(), 1);
  std::map<int, SubjectPredictionData> mine;
  int unseen = 0;
  run_collectively(world, [&] {
    for (int s : placement.subjects_of(world.rank())) {
      const TimeRanges range = range_of(infos[s]);
      const FittedModel::Subject subject = fitted.subject(s, end_of(range));
      unseen += !fitted.in_fit(s);
      const at::Tensor times = infos[s].times_in(range);
      const SubjectPrediction p =
          predict_subject(*subject.model, subject.params, subject.shared_params, subject.data, times, batch);
      SubjectPredictionData out;
      out.times = times;
      out.nll = p.nll;
      for (size_t h = 0; h < spec.outputs.size(); ++h)
        out.means[spec.outputs[h].group] = p.means[h];
      mine[s] = std::move(out);
    }
  });
  write_predictions(o.str("out"), world, header, mine);
  const int64_t unseen_all = world.sum(unseen);
  console.line(cat(
      "predicted ", infos.size(), " subjects (", unseen_all, " not in the fit) on ", world.size(), " rank(s)",
      fitted.devices()[0].is_cpu() ? std::string() : cat(" with ", fitted.devices().size(), " GPU(s) each"),
      fitted.from_checkpoint() ? " from the data copied into the checkpoint" : "", ": ", o.str("out")));
  return kExitOk;
}

}  // namespace mslr
