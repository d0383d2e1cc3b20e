// mslr fit: read the data, place subjects on ranks, fit, checkpoint, and leave a run folder
// (io/run_folder.h). The driver, cmd_fit at the end, reads top to bottom: resolve what is asked, build the
// fitter, start or resume it, run it with its hooks (progress, checkpoints, signals), finish.
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <optional>
#include <set>

#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/app/console.h"
#include "mslr/app/fit_config.h"
#include "mslr/app/model_config.h"
#include "mslr/app/signals.h"
#include "mslr/comm/mpi_communicator.h"
#include "mslr/comm/nccl_communicator.h"
#include "mslr/core/error.h"
#include "mslr/fit/fitter.h"
#include "mslr/io/checkpoint.h"
#include "mslr/io/data_file.h"
#include "mslr/io/paths.h"
#include "mslr/io/run_folder.h"

namespace mslr {
namespace {

// Predictor ranges default to the bounding box of all subjects' properties (each rank reads some subjects).
void fill_property_ranges(Options& o, const DataFile& data, const Communicator& world) {
  if (o.has("model.range-lo") && o.has("model.range-hi")) return;
  int64_t n_props = 0;
  for (const auto& s : data.subjects())
    for (const auto& [g, n] : s.n_props)
      n_props = std::max(n_props, n);
  if (n_props == 0) return;
  at::Tensor lo = at::full({n_props}, -1e300, at::kDouble), hi = at::full({n_props}, -1e300, at::kDouble);
  run_collectively(world, [&] {
    for (size_t i = world.rank(); i < data.subjects().size(); i += world.size()) {
      DataReadOptions r;
      r.rows = 0;
      const SubjectData d = data.read(static_cast<int>(i), r);
      for (const auto& [g, p] : d.props) {
        const at::Tensor pd = p.to(at::kDouble);
        lo.narrow(0, 0, pd.size(1)).copy_(at::maximum(lo.narrow(0, 0, pd.size(1)), -std::get<0>(pd.min(0))));
        hi.narrow(0, 0, pd.size(1)).copy_(at::maximum(hi.narrow(0, 0, pd.size(1)), std::get<0>(pd.max(0))));
      }
    }
  });
  world.all_reduce_max(lo);
  world.all_reduce_max(hi);
  std::vector<std::string> los, his;
  for (int64_t i = 0; i < n_props; ++i) {
    double a = -lo[i].item<double>(), b = hi[i].item<double>();
    if (b <= a) b = a + 1.0;  // a constant property: any non-empty range
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.9g", a);
    los.push_back(buf);
    std::snprintf(buf, sizeof buf, "%.9g", b);
    his.push_back(buf);
  }
  auto join = [](const std::vector<std::string>& v) {
    std::string s;
    for (const auto& x : v)
      s += (s.empty() ? "" : ",") + x;
    return s;
  };
  if (!o.has("model.range-lo")) o.set("model.range-lo", {join(los)});
  if (!o.has("model.range-hi")) o.set("model.range-hi", {join(his)});
}

// Everything a fit is asked to do, resolved: the options in their order of precedence (the command line,
// --config, then the resumed checkpoint's configuration or else the data file's model), the files they name,
// the run folder, and the checked settings.
struct FitRequest {
  explicit FitRequest(Options o) : options(std::move(o)), run("") {}
  Options options;
  std::unique_ptr<CheckpointFile> resume;  // null for a fresh fit
  std::unique_ptr<CheckpointFile> init;    // --init-from, for a fresh fit
  std::unique_ptr<DataFile> data;
  RunFolder run;
  FitSettings settings;
  ModelSpec spec;
};

// The request, or null when --help was asked (and answered).
std::unique_ptr<FitRequest> resolve_request(const Args& args, const MpiCommunicator& world) {
  auto parse = [&args](const std::string& base, const std::string& origin) {
    Options o("fit", kFitSummary, fit_options());
    return o.parse(args, base, origin) ? std::optional<Options>(std::move(o)) : std::nullopt;
  };
  std::optional<Options> given = parse("", "");
  if (!given) return nullptr;
  auto r = std::make_unique<FitRequest>(std::move(*given));
  Options& o = r->options;
  // The run folder is --out as given here (never the one saved in a resumed checkpoint), else the folder of
  // the checkpoint resumed.
  std::string out = o.has("out") ? o.str("out") : "";
  if (o.has("init-from") && o.has("resume"))
    throw UsageError("mslr fit: --init-from starts a new fit and --resume continues one: give one of them");
  if (o.has("resume")) {
    r->resume = std::make_unique<CheckpointFile>(o.str("resume"), world);
    o = *parse(r->resume->config(), r->resume->path() + ": the saved config");
  }
  if (o.has("init-from") && !r->resume) {
    r->init = std::make_unique<CheckpointFile>(o.str("init-from"), world);
    o = *parse(r->init->model(), r->init->path() + ": its model");
    o.set("init-from", {absolute_path(r->init->path())});
  }
  if (!o.has("data")) throw UsageError("mslr fit: --data is required (see mslr fit --help)");
  r->data = std::make_unique<DataFile>(o.str("data"), world);
  if (!r->resume && o.list("model.input").empty() && !r->data->model_config().empty())
    o = *parse("[model]\n" + r->data->model_config(), r->data->path() + ": the 'model' attribute");
  // The saved config names the data file absolutely, so that predict and the plot tools find it from
  // anywhere.
  o.set("data", {absolute_path(o.str("data"))});

  const std::string resumed_run = r->resume ? RunFolder::of_checkpoint(r->resume->path()).string() : "";
  if (out.empty()) out = resumed_run;
  if (out.empty())
    throw UsageError(r->resume ? "mslr fit: --out is required: the checkpoint resumed is not in a run "
                                 "folder's checkpoints/"
                               : "mslr fit: --out is required (see mslr fit --help)");
  r->run = RunFolder(out);
  r->settings = fit_settings_from(o);
  if (r->run.holds_fit() && !(r->resume && same_file(out, resumed_run)) && !r->settings.overwrite)
    throw UsageError("mslr fit: --out " + out + " already holds a fit; continue it with --resume " + out +
                     ", or start afresh there with --overwrite (which deletes it)");
  fill_property_ranges(o, *r->data, world);
  r->spec = model_from_options(o);
  r->settings.fit.subjects = subjects_from(o, r->data->subjects(), r->data->path());
  return r;
}

// The step's communicator: NCCL between GPUs, or null on CPUs (the step uses MPI). A GPU fit without NCCL
// is refused here, before anything is read: MPI's all-reduce takes host memory only, and staging every step's
// gradient through the host would hide the cost a GPU user came to avoid.
std::unique_ptr<Communicator> step_communicator(const MpiCommunicator& world, int gpus_per_rank) {
  if (gpus_per_rank == 0) return nullptr;
  if (!nccl_compiled())
    fail(
        "--gpus-per-rank ", gpus_per_rank,
        ": this mslr was built without NCCL, which a GPU fit's all-reduce needs; rebuild with -DNCCL_ROOT=... "
        "(see README, Building), or fit on the CPU with --gpus-per-rank 0");
  std::vector<at::Device> devices;
  run_collectively(world, [&] { devices = rank_devices(world, gpus_per_rank); });
  return make_nccl_communicator(world, devices[0].index());
}

// The values a fit started with --init-from begins with: the checkpoint's shared parameters, and those of
// this rank's subjects that the checkpoint fitted (by name), after checking that their layouts are this
// model's. Returns the number of subjects taken, over all ranks, in `taken`.
StartingValues starting_values(const CheckpointFile& init, const Fitter& fitter, const Communicator& world,
                               int64_t* taken) {
  StartingValues from;
  int64_t mine = 0;
  run_collectively(world, [&] {
    MSLR_CHECK(init.shared_layout().same_as(fitter.shared().layout()), init.path(),
               ": its shared parameters differ from this model's: ",
               init.shared_layout().difference(fitter.shared().layout()));
    from.shared = init.read_shared_params();
    for (int s : fitter.local_subjects()) {
      const SubjectModel& model = fitter.model(s);
      const int k = init.index_of(model.name());
      if (k < 0 || !init.subject_fitted(k)) continue;
      MSLR_CHECK(init.subject_layout(k).same_as(model.layout()), init.path(), ": subject '", model.name(),
                 "' has other parameters there: ", init.subject_layout(k).difference(model.layout()));
      from.subjects[s] = init.read_subject_params(k);
      ++mine;
    }
  });
  *taken = world.sum(mine);
  return from;
}

// Starts the fitter afresh (from --init-from's checkpoint when given), or from the checkpoint resumed after
// checking that it was written for this model and these subjects.
void start_or_resume(Fitter& fitter, const FitRequest& r,
                     const std::vector<std::unique_ptr<SubjectModel>>& models, const Communicator& world,
                     const Console& console) {
  if (!r.resume && r.init) {
    int64_t taken = 0;
    fitter.initialize(starting_values(*r.init, fitter, world, &taken));
    console.line(cat("starting from ", r.init->path(), ": its shared parameters and ", taken,
                     " subject(s) it fitted"));
    return;
  }
  if (!r.resume) {
    fitter.initialize();
    return;
  }
  std::vector<std::pair<std::string, const ParamLayout*>> layouts;
  std::vector<std::string> names;
  for (const auto& m : models) {
    layouts.emplace_back(m->name(), &m->layout());
    names.push_back(m->name());
  }
  run_collectively(world, [&] {
    r.resume->check_model(model_text(r.options), fitter.shared().layout(), layouts);
    MSLR_CHECK(r.resume->subject_names() == names, r.resume->path(),
               ": the checkpoint's subjects differ from those of ", r.data->path());
  });
  FitState state;
  run_collectively(world, [&] { state = r.resume->read_state(fitter.local_subjects()); });
  fitter.restore(state);
}

// Writes the fit's checkpoints into the run folder: the header every rank knows (layouts and extras of every
// subject) is built once; each checkpoint is then every rank's state and extras, and becomes `latest` when
// complete.
class CheckpointWriter {
 public:
  CheckpointWriter(const FitRequest& r, const Fitter& fitter,
                   const std::vector<std::unique_ptr<SubjectModel>>& models, const std::string& config_text,
                   const Communicator& world, const Console& console)
      : r_(r), fitter_(fitter), world_(world), console_(console) {
    header_.config = config_text;
    header_.model = model_text(r.options);
    header_.shared_layout = fitter.shared().layout();
    header_.subjects = r.data->subjects();
    const std::set<int> fitted(fitter.log().fitted.begin(), fitter.log().fitted.end());
    for (size_t i = 0; i < models.size(); ++i) {
      header_.subject_layouts.push_back(models[i]->layout());
      header_.extras.push_back(fitted.count(static_cast<int>(i))
                                   ? subject_extras_layout(*models[i], header_.subjects[i], r.settings.copies,
                                                           r.settings.fit.dtype)
                                   : std::vector<ExtraDataset>{});
    }
  }

  void save(const FitState& state, const std::string& name) const {
    const ExtrasRequest& copies = r_.settings.copies;
    std::map<int, std::map<std::string, at::Tensor>> extras;
    for (const auto& s : state.subjects)
      if (s.fitted)
        extras[s.index] =
            subject_extras(fitter_.data_modes(s.index),
                           copies.props || copies.data ? fitter_.held_data(s.index) : SubjectData{},
                           header_.subjects[s.index], copies);
    const std::string path = (r_.run.checkpoints() / name).string();
    write_checkpoint(path, world_, header_, state, extras);
    run_collectively(world_, [&] {
      if (world_.is_root()) r_.run.publish(name, r_.settings.checkpoints.keep);
    });
    console_.line("checkpoint " + path);
  }

 private:
  const FitRequest& r_;
  const Fitter& fitter_;
  const Communicator& world_;
  const Console& console_;
  CheckpointHeader header_;
};

// Runs the fit. An error on this rank alone ends the job at once: the other ranks are waiting in the step's
// all-reduce, and unwinding through the collective closes of open files would wait for them forever.
// Returns whether a signal stopped it.
bool run_contained(Fitter& fitter, const FitHooks& hooks, const RunFolder& run,
                   const MpiCommunicator& world) {
  try {
    return fitter.run(hooks);
  } catch (const DivergedError& e) {
    throw DivergedError(std::string(e.what()) + "; " +
                        (::access(run.latest().c_str(), F_OK) == 0
                             ? "the last checkpoint is " + run.latest().string()
                             : "no checkpoint was written"));
  } catch (const CollectiveError&) {
    throw;  // every rank has it: they exit together
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mslr fit: error on rank %d: %s\n", world.rank(), e.what());
    std::fflush(stderr);
    abort_world(kExitError);
  }
}

// The figures a scaling study collects, on one line (jobs/slurm-scaling.sh reads it).
std::string done_line(const FitLog& log, int ranks, const RunFolder& run) {
  char line[256];
  std::snprintf(line, sizeof line,
                "done: %zu epochs, %.3f s of fitting (%.4g s/epoch), objective %.9g, ranks %d", log.size(),
                log.elapsed.back(), log.elapsed.back() / static_cast<double>(log.size()),
                log.objective.back(), ranks);
  return std::string(line) + ", results in " + run.root().string();
}

}  // namespace

int cmd_fit(const Args& args, const MpiCommunicator& world) {
  const std::unique_ptr<FitRequest> request = resolve_request(args, world);
  if (!request) return kExitOk;
  const FitRequest& r = *request;
  const FitSettings& s = r.settings;
  const Console console(world.is_root(), r.options.flag("quiet"));
  const int threads = apply_threads(r.options, world);
  run_collectively(world, [&] {
    if (!world.is_root()) return;
    if (s.overwrite && !r.resume) r.run.clear();
    r.run.create();
  });

  // The fitter, and every subject's model (for the layouts a checkpoint records, fitted or not).
  const std::unique_ptr<Communicator> nccl = step_communicator(world, s.fit.gpus_per_rank);
  const Communicator& comm = nccl ? *nccl : static_cast<const Communicator&>(world);
  const auto& infos = r.data->subjects();
  Fitter fitter(comm, r.spec, s.fit, infos);
  std::vector<std::unique_ptr<SubjectModel>> models;
  std::vector<std::string> names;
  for (const auto& i : infos) {
    models.push_back(std::make_unique<SubjectModel>(fitter.shared(), shape_of(i), i.name));
    names.push_back(i.name);
  }
  start_or_resume(fitter, r, models, world, console);
  fitter.load_data([&](int subject) {
    DataReadOptions read;
    const auto groups = r.spec.groups();
    read.groups = {groups.begin(), groups.end()};
    // No further than the training data, unless a copy is kept for the checkpoints.
    read.rows = s.copies.data ? -1 : end_of(s.fit.split.train(infos[subject]));
    return r.data->read(subject, read);
  });

  // The run folder is where the config lives, not part of it: a copied folder resumes where it is.
  const std::string config_text = r.options.resolved({"config", "resume", "out", "overwrite", "quiet"});
  // The nodes, as the ranks that are the first of theirs, counted (what a multi-node run's log should show).
  at::Tensor nodes = at::full({1}, world.node() == world.rank() ? 1 : 0, at::kLong);
  world.all_reduce_sum(nodes);
  console.line("mslr " MSLR_VERSION " fit: " + std::to_string(world.size()) + " rank(s), " +
               std::to_string(threads) + " thread(s) per rank on " + std::to_string(nodes.item<int64_t>()) +
               " node(s), " + comm.backend() + " all-reduce; " + fitter.describe());
  console.line("resolved config:\n" + config_text);
  console.line(fitter.placement().table(names));
  if (r.resume) {
    const FitState at = fitter.state();
    console.line("resuming from " + r.resume->path() + " at epoch " + std::to_string(at.epoch) +
                 (at.batch ? ", minibatch " + std::to_string(at.batch) : ""));
  }
  if (world.is_root())
    std::ofstream(r.run.config()) << "# mslr fit: the configuration this run used\n" << config_text;
  MetricsFile metrics(r.run.metrics().string(), world.is_root(), fitter.log(), names);
  const CheckpointWriter checkpoints(r, fitter, models, config_text, world, console);

  install_stop_signals();
  FitHooks hooks;
  hooks.report_every = s.update_interval;
  hooks.on_report = [&](const FitLog& log, const FitReport& report) {
    metrics.append(log, report.first_new);
    console.line(progress_line(log, report, s.fit.epochs, names));
  };
  hooks.checkpoint_after = [&](int epoch) { return s.checkpoints.due(epoch); };
  hooks.on_checkpoint = [&](const FitState& st) {
    checkpoints.save(st, RunFolder::checkpoint_name(st.epoch, st.batch));
  };
  hooks.stop_requested = [] { return stop_signalled(); };
  if (run_contained(fitter, hooks, r.run, world)) {
    console.line("stopped by a signal; resume with: mslr fit --resume " + r.run.root().string());
    return kExitCheckpointed;
  }
  checkpoints.save(fitter.state(), RunFolder::final_name());
  if (fitter.log().size()) console.line(done_line(fitter.log(), world.size(), r.run));
  return kExitOk;
}

}  // namespace mslr
