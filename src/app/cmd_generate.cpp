// mslr generate and mslr latents: what a fitted model says beyond predictions, for each chosen subject,
// spread over ranks and gathered into one HDF5 file (io/subject_arrays.h).
//
//   generate: from a start, the model run forward for T steps, its outputs fed back as inputs where the data
//             does not give them (the means, or draws with the fitted noise):
//     /                                  attrs format="mslr-generated", version=1, checkpoint, data, config
//     /subjects/<name>/values/<output>   float [T, d]  row 0 the start, row t drawn (or the mean) given t-1
//     /subjects/<name>/means/<output>    float [T, d]  the noise-free means (row 0 NaN)
//                                        attrs start, steps, in_fit
//   latents: per sample pair (t-1, t) the projections proj_g = x_g·p_g and the transformed latents tran_h:
//     /                                  attrs format="mslr-latents", version=1, checkpoint, data, split, config
//     /subjects/<name>/times             int64 [n]
//     /subjects/<name>/proj/<input>      float [n, K_g]
//     /subjects/<name>/tran/<output>     float [n, d_trans_h]
//                                        attrs in_fit
#include <ATen/core/grad_mode.h>

#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/app/console.h"
#include "mslr/app/fitted_model.h"
#include "mslr/comm/placement.h"
#include "mslr/core/error.h"
#include "mslr/core/rng.h"
#include "mslr/fit/fitter.h"
#include "mslr/io/data_file.h"
#include "mslr/io/paths.h"
#include "mslr/io/subject_arrays.h"

namespace mslr {
namespace {

// The root attributes every output of these commands carries.
SubjectArraysLayout output_layout(const char* format, const FittedModel& fitted, const Options& o) {
  SubjectArraysLayout layout;
  layout.attributes = {{"format", format},
                       {"checkpoint", fitted.checkpoint().path()},
                       {"data", fitted.data_path()},
                       {"config", o.resolved()}};
  layout.int_attributes = {{"version", 1}};
  return layout;
}

// The parameter views and modes of one subject, for a forward pass.
struct Ready {
  ParamViews views;
  ModeSet modes;
};
Ready ready(const FittedModel& fitted, const FittedModel::Subject& s) {
  const ParamViews views{s.model->layout().views(s.params),
                         s.model->shared().layout().views(fitted.shared_params())};
  std::map<std::string, at::Tensor> props;
  for (const auto& [g, p] : s.data.props)
    props[g] = p.to(fitted.dtype());
  return {views, s.model->predict_modes(props, views)};
}

// --feed OUT:IN pairs, as input group -> output group.
std::map<std::string, std::string> feed_from(const Options& o, const ModelSpec& spec) {
  std::map<std::string, std::string> feed;
  for (const auto& text : o.list("feed")) {
    const auto f = split(text, ':');
    bool out = false, in = false;
    for (const auto& h : spec.outputs)
      out |= f.size() == 2 && h.group == f[0];
    for (const auto& g : spec.inputs)
      in |= f.size() == 2 && g.group == f[1];
    if (!out || !in)
      throw UsageError("mslr generate: --feed: '" + text +
                       "' is not OUTPUT:INPUT with an output and an input group of the model");
    feed[f[1]] = f[0];
  }
  return feed;
}

void check_out(const Options& o, const FittedModel& fitted, const char* format, const char* kind,
               const Communicator& world) {
  run_collectively(world, [&] {
    check_output_file(o.str("out"), "--out", {fitted.data_path(), fitted.checkpoint().path()},
                      {format, "", kind});
  });
}

}  // namespace

int cmd_generate(const Args& args, const MpiCommunicator& world) {
  FittedModelOptions fo(
      "generate",
      "Runs a fitted model forward from a start for chosen subjects: each step's outputs are fed back as the\n"
      "next step's inputs where the data does not give them (an input that is also an output, or as --feed\n"
      "says); the other inputs are read from the data. Writes the means, or draws with the fitted noise.",
      fitted_model_options({
          {"out", "", "file to write (format mslr-generated)"},
          {"subjects", "", "subjects to generate: comma-separated names or indices (default all)"},
          {"start", "0", "time point of the data where generation starts (row 0 of the output)"},
          {"steps", "0", "time points to generate, the start included (0: to the end of the data)"},
          {"start-from", "",
           "an mslr-data file whose subjects' groups at --start give the starting values instead"},
          {"feed", "", "output group OUT fed back as input group IN, as OUT:IN (default: same names)",
           OptionDecl::kList},
          {"sample", "false", "draw each step with the fitted noise instead of taking the mean",
           OptionDecl::kFlag},
          {"sample-seed", "0", "seed of the draws"},
      }));
  if (!fo.given.parse(args)) return kExitOk;
  const FittedModel fitted(fo, args, world);
  const Options& o = fo.options;
  const Console console(world.is_root(), o.flag("quiet"));
  apply_threads(o, world);
  const ModelSpec& spec = fitted.spec();
  const std::map<std::string, std::string> feed = feed_from(o, spec);
  const int64_t start = o.integer("start"), steps_asked = o.integer("steps");
  if (start < 0 || steps_asked < 0) throw UsageError("mslr generate: --start and --steps must be >= 0");
  if (o.integer("sample-seed") < 0) throw UsageError("mslr generate: --sample-seed must be >= 0");
  std::unique_ptr<DataFile> start_file;
  if (o.has("start-from")) start_file = std::make_unique<DataFile>(o.str("start-from"), world);
  check_out(o, fitted, "mslr-generated", "an mslr generated file", world);
  // Inputs read from the data bound the steps; a model that feeds every input back can go beyond it.
  std::set<std::string> read_from_data;
  for (const auto& g : spec.inputs) {
    bool fed = feed.count(g.group) > 0;
    for (const auto& h : spec.outputs)
      fed |= !feed.count(g.group) && h.group == g.group;
    if (!fed) read_from_data.insert(g.group);
  }

  const std::vector<int> chosen = fitted.select();
  SubjectArraysLayout layout = output_layout("mslr-generated", fitted, o);
  std::vector<int64_t> steps(fitted.subjects().size(), 0);
  std::vector<double> cost(fitted.subjects().size(), 0.0);
  for (size_t k = 0; k < chosen.size(); ++k) {
    const int s = chosen[k];
    const SubjectInfo& info = fitted.subjects()[s];
    if (start >= info.n_time)
      throw UsageError(cat("mslr generate: --start ", start, " is beyond subject '", info.name, "' (",
                           info.n_time, " time points)"));
    steps[s] = steps_asked ? steps_asked : info.n_time - start;
    if (!read_from_data.empty() && start + steps[s] > info.n_time)
      throw UsageError(cat("mslr generate: subject '", info.name, "' has ", info.n_time,
                           " time points; --start ", start, " and --steps ", steps[s],
                           " go beyond them, and input group '", *read_from_data.begin(),
                           "' is read from the data"));
    SubjectArraysLayout::Subject out{info.name, {}, {{"start", start}, {"steps", steps[s]}}};
    out.attributes["in_fit"] = fitted.in_fit(s);
    for (const char* kind : {"values/", "means/"})
      for (const auto& h : spec.outputs)
        out.arrays.push_back({kind + h.group, {steps[s], info.widths.at(h.group)}, at::kFloat});
    layout.subjects.push_back(out);
    cost[s] = static_cast<double>(steps[s]);
  }
  std::vector<double> chosen_cost;
  for (int s : chosen)
    chosen_cost.push_back(cost[s]);
  const Placement placement = place_subjects(chosen_cost, world.size(), 1);
  std::map<int, std::map<std::string, at::Tensor>> mine;
  run_collectively(world, [&] {
    for (int k : placement.subjects_of(world.rank())) {
      const int s = chosen[k];
      const SubjectInfo& info = fitted.subjects()[s];
      const FittedModel::Subject subject = fitted.subject(s, start + steps[s]);
      const Ready r = ready(fitted, subject);
      std::map<std::string, at::Tensor> given, initial;
      for (const auto& g : read_from_data)
        given[g] = subject.data.group(g).narrow(0, start, steps[s]).to(fitted.dtype());
      SubjectData from;
      if (start_file) {
        DataReadOptions read;
        read.rows = start + 1;
        read.props = false;
        from = start_file->read(start_file->index_of(info.name), read);
      }
      const SubjectData& first = start_file ? from : subject.data;
      for (const auto& h : spec.outputs) {
        MSLR_CHECK(first.groups.count(h.group) && first.group(h.group).size(0) > start, "subject '",
                   info.name, "': no starting value for output group '", h.group, "' at time ", start);
        initial[h.group] = first.group(h.group)[start].to(fitted.dtype());
      }
      Rng noise(static_cast<uint64_t>(o.integer("sample-seed")), {kRngSample, hash_name(info.name)});
      const auto g = subject.model->generate(steps[s], given, initial, r.modes, r.views,
                                             o.flag("sample") ? &noise : nullptr, feed);
      auto& out = mine[k];
      for (const auto& [group, v] : g.values)
        out["values/" + group] = v;
      for (const auto& [group, m] : g.means)
        out["means/" + group] = m;
    }
  });
  write_subject_arrays(o.str("out"), world, layout, mine);
  console.line(cat("generated ", chosen.size(), " subject(s) from time point ", start, " (",
                   o.flag("sample") ? "draws" : "means", ") on ", world.size(), " rank(s): ", o.str("out")));
  return kExitOk;
}

int cmd_latents(const Args& args, const MpiCommunicator& world) {
  FittedModelOptions fo(
      "latents",
      "Writes a fitted model's latents for chosen subjects and sample pairs (t-1, t): the projections\n"
      "proj_g = x_g.p_g of every input group and the transformed latents tran_h of every output group.\n"
      "tools/plot_latents.py plots them.",
      fitted_model_options({
          {"out", "", "file to write (format mslr-latents)"},
          {"subjects", "", "subjects: comma-separated names or indices (default all)"},
          {"split", "all", "which samples: all, train or test"},
          {"batch-size", "4096", "samples computed at a time"},
      }));
  if (!fo.given.parse(args)) return kExitOk;
  const FittedModel fitted(fo, args, world);
  const Options& o = fo.options;
  const Console console(world.is_root(), o.flag("quiet"));
  apply_threads(o, world);
  const ModelSpec& spec = fitted.spec();
  const std::string which = o.str("split");
  if (which != "test" && which != "train" && which != "all")
    throw UsageError("mslr latents: --split: '" + which + "' is not all, train or test");
  const int64_t batch = o.integer("batch-size");
  if (batch < 1) throw UsageError("mslr latents: --batch-size must be >= 1");
  check_out(o, fitted, "mslr-latents", "an mslr latents file", world);
  auto range_of = [&](const SubjectInfo& i) {
    if (which == "train") return fitted.split().train(i);
    if (which == "test") return fitted.split().test(i);
    return TimeRanges{{0, i.n_time}};
  };

  const std::vector<int> chosen = fitted.select();
  SubjectArraysLayout layout = output_layout("mslr-latents", fitted, o);
  layout.attributes["split"] = which + " (" + fitted.split().describe() + ")";
  std::vector<double> cost;
  for (int s : chosen) {
    const SubjectInfo& info = fitted.subjects()[s];
    const int64_t n = info.times_in(range_of(info)).numel();
    SubjectArraysLayout::Subject out{info.name, {{"times", {n}, at::kLong}}, {{"in_fit", fitted.in_fit(s)}}};
    for (const auto& g : spec.inputs)
      out.arrays.push_back({"proj/" + g.group, {n, g.n_modes}, at::kFloat});
    const auto trans = spec.trans_dims();
    for (size_t h = 0; h < spec.outputs.size(); ++h)
      out.arrays.push_back({"tran/" + spec.outputs[h].group, {n, trans[h]}, at::kFloat});
    layout.subjects.push_back(out);
    cost.push_back(subject_cost(spec, info, range_of(info), kSubjectCostCpu));
  }
  const Placement placement = place_subjects(cost, world.size(), 1);
  std::map<int, std::map<std::string, at::Tensor>> mine;
  run_collectively(world, [&] {
    for (int k : placement.subjects_of(world.rank())) {
      const int s = chosen[k];
      const TimeRanges range = range_of(fitted.subjects()[s]);
      const FittedModel::Subject subject = fitted.subject(s, end_of(range));
      const Ready r = ready(fitted, subject);
      const at::Tensor times = fitted.subjects()[s].times_in(range);
      at::NoGradGuard no_grad;
      std::vector<std::vector<at::Tensor>> proj(spec.inputs.size()), tran(spec.outputs.size());
      for (int64_t at = 0; at < times.numel(); at += batch) {
        const at::Tensor t = times.narrow(0, at, std::min(batch, times.numel() - at));
        std::vector<at::Tensor> x;
        for (const auto& g : spec.inputs)
          x.push_back(gather_rows(subject.data.group(g.group), t, -1).to(fitted.dtype()));
        const SubjectModel::Latents l = subject.model->latents(x, r.modes, r.views);
        for (size_t g = 0; g < proj.size(); ++g)
          proj[g].push_back(l.proj[g]);
        for (size_t h = 0; h < tran.size(); ++h)
          tran[h].push_back(l.tran[h]);
      }
      auto& out = mine[k];
      out["times"] = times;
      for (size_t g = 0; g < proj.size(); ++g)
        out["proj/" + spec.inputs[g].group] =
            proj[g].empty() ? at::zeros({0, spec.inputs[g].n_modes}) : at::cat(proj[g]);
      for (size_t h = 0; h < tran.size(); ++h)
        out["tran/" + spec.outputs[h].group] =
            tran[h].empty() ? at::zeros({0, spec.trans_dims()[h]}) : at::cat(tran[h]);
    }
  });
  write_subject_arrays(o.str("out"), world, layout, mine);
  console.line(cat("wrote the latents of ", chosen.size(), " subject(s) on ", world.size(),
                   " rank(s): ", o.str("out")));
  return kExitOk;
}

}  // namespace mslr
