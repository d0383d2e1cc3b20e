// mslr fit: read the data, place subjects on ranks, fit, checkpoint, and leave a run folder:
//   OUT/config.ini  OUT/metrics.jsonl  OUT/checkpoints/{epoch-NNNNNN.h5, final.h5, latest -> ...}
#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/app/console.h"
#include "mslr/app/model_config.h"
#include "mslr/app/signals.h"
#include "mslr/comm/mpi_communicator.h"
#include "mslr/comm/nccl_communicator.h"
#include "mslr/core/error.h"
#include "mslr/fit/fitter.h"
#include "mslr/io/atomic_file.h"
#include "mslr/io/checkpoint.h"
#include "mslr/io/data_file.h"
#include "mslr/io/paths.h"

namespace mslr {
namespace {

std::vector<OptionDecl> fit_options() {
  return with(
      {
          {"data", "", "mslr-data file to fit"},
          {"out", "",
           "run folder for config.ini, metrics.jsonl and checkpoints/ (default with --resume: its folder)"},
          {"resume", "", "continue from a checkpoint file or run folder (its checkpoints/latest)"},
          {"overwrite", "false", "start afresh in an --out folder that already holds a fit, deleting it",
           OptionDecl::kFlag},
          {"epochs", "100", "total epochs (a resumed fit stops at the same total)"},
          {"batches", "10",
           "minibatches per epoch; every subject's training samples are split into this many"},
          {"lr", "0.01", "learning rate"},
          {"lr-schedule", "",
           "learning rates EPOCH:RATE,... from their epoch on (overrides --lr); a change resets Adam"},
          {"adam-beta1", "0.9", "Adam beta1"},
          {"adam-beta2", "0.999", "Adam beta2"},
          {"adam-eps", "1e-8", "Adam epsilon"},
          {"adam-weight-decay", "0", "Adam L2 weight decay"},
          {"min-var", "1e-3", "lower bound on every noise variance psi, applied after each step"},
          {"seed", "0", "seed of the starting values and minibatch orders"},
          {"subjects", "", "fit only these subjects: comma-separated indices or names (default all)"},
          {"checkpoint-every", "10", "write a checkpoint every N epochs (0: only the final one)"},
          {"checkpoint-epochs", "", "also checkpoint after these epochs, comma-separated"},
          {"keep-checkpoints", "3", "keep the newest N periodic checkpoints (0: keep all)"},
          {"copy-props", "false", "store each subject's properties in checkpoints", OptionDecl::kFlag},
          {"copy-data", "false",
           "store each subject's data in checkpoints (a checkpoint alone can then predict)",
           OptionDecl::kFlag},
          {"data-on-device", "false", "keep whole subjects on their GPU instead of copying each minibatch",
           OptionDecl::kFlag},
          {"dtype", "float32", "float32 or float64"},
          {"step", "auto",
           "auto: the batched step (hand-written gradients, CPU) where it covers the model, else autograd; "
           "batched: fail when it does not; autograd: the reference step"},
          {"update-interval", "1", "print progress every N epochs"},
      },
      {split_options(), runtime_options(), model_options()});
}

const char* kFitSummary =
    "Fits a multi-subject latent regression model. Run under mpirun/srun: every rank fits its share of the\n"
    "subjects and the shared predictors are kept identical by one all-reduce per minibatch. SIGTERM or "
    "SIGUSR1\n"
    "checkpoints at the next minibatch and exits with status 3; --resume continues exactly.";

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(item);
  return out;
}

// The run folder a resumed checkpoint belongs to (RUN for RUN/checkpoints/FILE), or "" for a checkpoint file
// kept elsewhere.
std::string run_folder_of(const std::string& checkpoint) {
  const std::string dir = dir_of(checkpoint);
  const auto slash = dir.find_last_of('/');
  const std::string base = slash == std::string::npos ? dir : dir.substr(slash + 1);
  return base == "checkpoints" ? dir_of(dir) : "";
}

// Whether `out` already holds a fit: a checkpoint.
bool holds_fit(const std::string& out) {
  struct stat st;
  return ::lstat((out + "/checkpoints/latest").c_str(), &st) == 0;
}

// Removes what an earlier fit left in `out` (--overwrite), so that its checkpoints are never taken for this
// fit's: its log, config and every checkpoint file.
void clear_run_folder(const std::string& out) {
  for (const char* f : {"/metrics.jsonl", "/config.ini", "/checkpoints/latest"})
    ::unlink((out + f).c_str());
  const std::string dir = out + "/checkpoints";
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("epoch-", 0) == 0 || n.rfind("final.h5", 0) == 0) ::unlink((dir + "/" + n).c_str());
    }
    ::closedir(d);
  }
}

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

// An item of --subjects: a subject's name, else its index. A name that reads as the index of another
// subject is refused rather than guessed.
int subject_index(const std::string& item, const DataFile& data) {
  const auto& subjects = data.subjects();
  int named = -1;
  for (size_t i = 0; i < subjects.size(); ++i)
    if (subjects[i].name == item) named = static_cast<int>(i);
  char* end = nullptr;
  errno = 0;
  const long v = std::strtol(item.c_str(), &end, 10);
  const bool numeric = !item.empty() && *end == '\0' && errno == 0;
  if (numeric && named >= 0 && named != v && v >= 0 && v < static_cast<long>(subjects.size()))
    throw UsageError(cat("mslr fit: --subjects: '", item, "' is both the name of subject ", named,
                         " and the index of subject '", subjects[v].name, "': write ", named,
                         " for the first or ", subjects[v].name, " for the second"));
  if (named >= 0) return named;
  if (!numeric) throw UsageError(cat("mslr fit: --subjects: ", data.path(), ": no subject '", item, "'"));
  if (v < 0 || v >= static_cast<long>(subjects.size()))
    throw UsageError(cat("mslr fit: --subjects: index ", item, " is outside [0, ", subjects.size(), ") (",
                         data.path(), " has ", subjects.size(), " subjects)"));
  return static_cast<int>(v);
}

FitOptions fit_options_from(const Options& o, const DataFile& data) {
  FitOptions f;
  f.epochs = static_cast<int>(o.integer("epochs"));
  f.batches = static_cast<int>(o.integer("batches"));
  try {
    if (!o.has("lr-schedule") && !(o.number("lr") > 0))
      throw UsageError("mslr fit: --lr must be a positive number, got " + o.str("lr"));
    f.lr = o.has("lr-schedule") ? LrSchedule::parse(o.str("lr-schedule")) : LrSchedule(o.number("lr"));
  } catch (const Error& e) {
    throw UsageError("mslr fit: --" + std::string(e.what()));
  }
  f.adam.beta1 = o.number("adam-beta1");
  f.adam.beta2 = o.number("adam-beta2");
  f.adam.eps = o.number("adam-eps");
  f.adam.weight_decay = o.number("adam-weight-decay");
  f.min_var = o.number("min-var");
  if (o.integer("seed") < 0) throw UsageError("mslr fit: --seed must be >= 0, got " + o.str("seed"));
  f.seed = static_cast<uint64_t>(o.integer("seed"));
  f.split = split_from(o);
  f.gpus_per_rank = static_cast<int>(o.integer("gpus-per-rank"));
  f.data_on_device = o.flag("data-on-device");
  const std::string dtype = o.str("dtype");
  if (dtype != "float32" && dtype != "float64")
    throw UsageError("mslr fit: --dtype: '" + dtype + "' is not float32 or float64");
  f.dtype = dtype == "float64" ? at::kDouble : at::kFloat;
  try {
    f.step = parse_step_kind(o.str("step"));
  } catch (const Error& e) {
    throw UsageError("mslr fit: --" + std::string(e.what()));
  }
  for (const auto& item : split_commas(o.has("subjects") ? o.str("subjects") : ""))
    f.subjects.push_back(subject_index(item, data));
  if (o.has("subjects") && f.subjects.empty())
    throw UsageError("mslr fit: --subjects: '" + o.str("subjects") + "' names no subject");
  try {
    f.validate();
  } catch (const Error& e) {
    throw UsageError("mslr fit: " + std::string(e.what()));
  }
  return f;
}

// The extra datasets of every subject's checkpoint entry (the same on every rank).
std::vector<ExtraDataset> extras_of(const SubjectModel& m, const SubjectInfo& info, bool fitted,
                                    const Options& o, at::ScalarType dtype) {
  std::vector<ExtraDataset> x;
  if (!fitted) return x;
  for (int g = 0; g < m.n_inputs(); ++g)
    if (m.p_predictor(g))
      x.push_back({"modes/p." + m.spec().inputs[g].group, {m.d_in(g), m.spec().inputs[g].n_modes}, dtype});
  for (int h = 0; h < m.n_outputs(); ++h)
    if (m.u_predictor(h))
      x.push_back({"modes/u." + m.spec().outputs[h].group, {m.d_out(h), m.d_trans(h)}, dtype});
  const auto groups = m.spec().groups();
  if (o.flag("copy-props"))
    for (const auto& g : groups)
      if (info.n_props.count(g))
        x.push_back({"props/" + g, {info.widths.at(g), info.n_props.at(g)}, at::kFloat});
  if (o.flag("copy-data")) {
    for (const auto& g : groups)
      x.push_back({"groups/" + g, {info.n_time, info.widths.at(g)}, at::kFloat});
    if (info.segments.defined()) x.push_back({"segments", {info.segments.size(0), 2}, at::kLong});
  }
  return x;
}

}  // namespace

int cmd_fit(const Args& args, const MpiCommunicator& world) {
  // Options: the command line, then --config, then the resumed checkpoint's config or the data file's model.
  auto parse = [&](const std::string& base, const std::string& origin = "") {
    Options o("fit", kFitSummary, fit_options());
    return std::make_pair(o.parse(args, base, origin), o);
  };
  auto parsed = parse("");
  if (!parsed.first) return kExitOk;
  Options& opts = parsed.second;
  const Console console(world.is_root(), opts.flag("quiet"));
  // The run folder: --out as given here (never the one saved in a resumed checkpoint), else the folder of
  // the checkpoint resumed.
  std::string out = opts.has("out") ? opts.str("out") : "";
  std::unique_ptr<CheckpointFile> resume;
  if (opts.has("resume")) {
    resume = std::make_unique<CheckpointFile>(opts.str("resume"), world);
    opts = parse(resume->config(), resume->path() + ": the saved config").second;
  }
  if (!opts.has("data")) throw UsageError("mslr fit: --data is required (see mslr fit --help)");
  DataFile data(opts.str("data"), world);
  if (!resume && opts.list("model.input").empty() && !data.model_config().empty())
    opts = parse("[model]\n" + data.model_config(), data.path() + ": the 'model' attribute").second;
  // The saved config names the data file absolutely, so that predict and the plot tools find it from
  // anywhere.
  if (char* full = ::realpath(opts.str("data").c_str(), nullptr)) {
    opts.set("data", {full});
    std::free(full);
  }
  const std::string resumed_run = resume ? run_folder_of(resume->path()) : "";
  if (out.empty()) out = resumed_run;
  if (out.empty())
    throw UsageError(resume ? "mslr fit: --out is required: the checkpoint resumed is not in a run folder's "
                              "checkpoints/"
                            : "mslr fit: --out is required (see mslr fit --help)");
  if (holds_fit(out) && !(resume && same_file(out, resumed_run)) && !opts.flag("overwrite"))
    throw UsageError("mslr fit: --out " + out + " already holds a fit; continue it with --resume " + out +
                     ", or start afresh there with --overwrite (which deletes it)");
  fill_property_ranges(opts, data, world);
  const ModelSpec spec = model_from_options(opts);
  const FitOptions fo = fit_options_from(opts, data);
  const int threads = apply_threads(opts, world);
  const int64_t every = opts.integer("checkpoint-every"), keep = opts.integer("keep-checkpoints"),
                update = opts.integer("update-interval");
  if (every < 0 || keep < 0 || update < 1)
    throw UsageError(
        "mslr fit: --checkpoint-every and --keep-checkpoints must be >= 0, --update-interval >= 1");
  std::set<int> checkpoint_epochs;
  for (const auto& e : split_commas(opts.has("checkpoint-epochs") ? opts.str("checkpoint-epochs") : "")) {
    char* end = nullptr;
    errno = 0;
    const long v = std::strtol(e.c_str(), &end, 10);
    if (*end != '\0' || errno != 0 || v < 1 || v > INT32_MAX)
      throw UsageError("mslr fit: --checkpoint-epochs: '" + e + "' is not an epoch number (1 or more)");
    checkpoint_epochs.insert(static_cast<int>(v));
  }
  const std::string ckpt_dir = out + "/checkpoints";
  run_collectively(world, [&] {
    if (!world.is_root()) return;
    if (opts.flag("overwrite") && !resume) clear_run_folder(out);
    make_dirs(ckpt_dir);
  });

  // The step's communicator: NCCL between GPUs when it is built in, MPI otherwise.
  std::unique_ptr<Communicator> nccl;
  if (fo.gpus_per_rank > 0) {
    std::vector<at::Device> devices;
    run_collectively(world, [&] { devices = rank_devices(world, fo.gpus_per_rank); });
    if (nccl_compiled()) nccl = make_nccl_communicator(world, devices[0].index());
  }
  const Communicator& comm = nccl ? *nccl : static_cast<const Communicator&>(world);

  Fitter fitter(comm, spec, fo, data.subjects());
  const auto& infos = data.subjects();
  std::vector<std::string> names;
  for (const auto& i : infos)
    names.push_back(i.name);
  std::vector<std::unique_ptr<SubjectModel>> all_models;  // every subject's layout, for checkpoints
  for (const auto& i : infos)
    all_models.push_back(std::make_unique<SubjectModel>(fitter.shared(), shape_of(i), i.name));
  const std::set<int> fitted(fitter.log().fitted.begin(), fitter.log().fitted.end());

  if (resume) {
    std::vector<std::pair<std::string, const ParamLayout*>> layouts;
    for (const auto& m : all_models)
      layouts.emplace_back(m->name(), &m->layout());
    run_collectively(world, [&] {
      resume->check_model(model_text(opts), fitter.shared().layout(), layouts);
      MSLR_CHECK(resume->subject_names() == names, resume->path(),
                 ": the checkpoint's subjects differ from those of ", data.path());
    });
    FitState state;
    run_collectively(world, [&] { state = resume->read_state(fitter.local_subjects()); });
    fitter.restore(state);
  } else {
    fitter.initialize();
  }
  fitter.load_data([&](int s) {
    DataReadOptions r;
    const auto groups = spec.groups();
    r.groups = {groups.begin(), groups.end()};
    // The fit reads no further than its training data, unless it keeps a copy for its checkpoints.
    r.rows = opts.flag("copy-data") ? -1 : fo.split.train(infos[s].n_time).end;
    return data.read(s, r);
  });

  // The run folder is where the config lives, not part of it: a copied folder resumes where it is.
  const std::string config_text = opts.resolved({"config", "resume", "out", "overwrite", "quiet"});
  console.line("mslr " MSLR_VERSION " fit: " + std::to_string(world.size()) + " rank(s), " +
               std::to_string(threads) + " thread(s) per rank, " + comm.backend() + " all-reduce; " +
               fitter.describe());
  console.line("resolved config:\n" + config_text);
  console.line(fitter.placement().table(names));
  if (resume) {
    const FitState where = fitter.state();
    console.line("resuming from " + resume->path() + " at epoch " + std::to_string(where.epoch) +
                 (where.batch ? ", minibatch " + std::to_string(where.batch) : ""));
  }
  if (world.is_root()) {
    std::ofstream(out + "/config.ini") << "# mslr fit: the configuration this run used\n" << config_text;
  }
  MetricsFile metrics(out + "/metrics.jsonl", world.is_root(), fitter.log(), names);

  CheckpointHeader header;
  header.config = config_text;
  header.model = model_text(opts);
  header.shared_layout = fitter.shared().layout();
  header.subjects = infos;
  for (size_t i = 0; i < infos.size(); ++i) {
    header.subject_layouts.push_back(all_models[i]->layout());
    header.extras.push_back(
        extras_of(*all_models[i], infos[i], fitted.count(static_cast<int>(i)) > 0, opts, fo.dtype));
  }
  auto save = [&](const FitState& st, const std::string& file) {
    std::map<int, std::map<std::string, at::Tensor>> extras;
    for (const auto& s : st.subjects) {
      if (!s.fitted) continue;
      auto& x = extras[s.index];
      for (auto& [k, v] : fitter.predicted_modes(s.index))
        x["modes/" + k] = v;
      if (opts.flag("copy-props") || opts.flag("copy-data")) {
        const SubjectData d = fitter.held_data(s.index);
        if (opts.flag("copy-props"))
          for (const auto& [g, p] : d.props)
            x["props/" + g] = p;
        if (opts.flag("copy-data")) {
          for (const auto& [g, v] : d.groups)
            x["groups/" + g] = v;
          if (d.segments.defined()) x["segments"] = d.segments;
        }
      }
    }
    const std::string path = ckpt_dir + "/" + file;
    write_checkpoint(path, world, header, st, extras);
    run_collectively(world, [&] {
      if (!world.is_root()) return;
      point_link(ckpt_dir + "/latest", file);
      prune_checkpoints(ckpt_dir, static_cast<int>(keep));
    });
    console.line("checkpoint " + path);
  };

  install_stop_signals();
  FitHooks hooks;
  hooks.report_every = static_cast<int>(update);
  hooks.on_report = [&](const FitLog& log, const FitReport& r) {
    metrics.append(log, r.first_new);
    console.line(progress_line(log, r, fo.epochs, names));
  };
  hooks.checkpoint_after = [&](int epoch) {
    return (every > 0 && epoch % every == 0) || checkpoint_epochs.count(epoch) > 0;
  };
  hooks.on_checkpoint = [&](const FitState& st) {
    char file[64];
    if (st.batch == 0)
      std::snprintf(file, sizeof file, "epoch-%06d.h5", st.epoch);
    else
      std::snprintf(file, sizeof file, "epoch-%06d-batch-%05d.h5", st.epoch, st.batch);
    save(st, file);
  };
  hooks.stop_requested = [] { return stop_signalled(); };
  bool stopped = false;
  try {
    stopped = fitter.run(hooks);
  } catch (const DivergedError& e) {
    const std::string latest = ckpt_dir + "/latest";
    throw DivergedError(std::string(e.what()) + "; " +
                        (::access(latest.c_str(), F_OK) == 0 ? "the last checkpoint is " + latest
                                                             : "no checkpoint was written"));
  } catch (const CollectiveError&) {
    throw;  // every rank has it: they exit together
  } catch (const std::exception& e) {
    // Only this rank failed; the others wait in the step's all-reduce. End the job here, before unwinding
    // through the collective closes of the open HDF5 files, which would wait for them forever.
    std::fprintf(stderr, "mslr fit: error on rank %d: %s\n", world.rank(), e.what());
    std::fflush(stderr);
    abort_world(kExitError);
  }
  if (stopped) {
    console.line("stopped by a signal; resume with: mslr fit --resume " + out);
    return kExitCheckpointed;
  }
  save(fitter.state(), "final.h5");
  const FitLog& log = fitter.log();
  if (log.size()) {
    // One line with the figures a scaling study collects (jobs/slurm-scaling.sh reads it).
    char line[256];
    std::snprintf(line, sizeof line,
                  "done: %zu epochs, %.3f s of fitting (%.4g s/epoch), objective %.9g, ranks %d", log.size(),
                  log.elapsed.back(), log.elapsed.back() / static_cast<double>(log.size()),
                  log.objective.back(), world.size());
    console.line(std::string(line) + ", results in " + out);
  }
  return kExitOk;
}

}  // namespace mslr
