#include "mslr/app/fit_config.h"

#include <cerrno>
#include <climits>
#include <cstdlib>

#include "mslr/app/commands.h"
#include "mslr/app/model_config.h"
#include "mslr/core/error.h"

namespace mslr {
namespace {

// Whether `text` is a whole decimal number in the range of long, stored in `*value`.
bool whole_number(const std::string& text, long* value) {
  char* end = nullptr;
  errno = 0;
  *value = std::strtol(text.c_str(), &end, 10);
  return !text.empty() && *end == '\0' && errno == 0;
}

// An option that the fit keeps as an int.
int int_option(const Options& o, const std::string& name) {
  const int64_t v = o.integer(name);
  if (v < INT_MIN || v > INT_MAX)
    throw UsageError("mslr fit: --" + name + ": " + o.str(name) + " is too large");
  return static_cast<int>(v);
}

// Runs `convert`, turning the Error of a setting's own check into a UsageError: "mslr fit: --<message>".
template <class F>
auto as_usage(F&& convert, const char* prefix = "mslr fit: --") {
  try {
    return convert();
  } catch (const Error& e) {
    throw UsageError(prefix + std::string(e.what()));
  }
}

}  // namespace

const char* const kFitSummary =
    "Fits a multi-subject latent regression model. Run under mpirun/srun: every rank fits its share of the\n"
    "subjects and the shared predictors are kept identical by one all-reduce per minibatch. SIGTERM or "
    "SIGUSR1\n"
    "checkpoints at the next minibatch and exits with status 3; --resume continues exactly.";

std::vector<OptionDecl> fit_options() {
  const FitSettings d;
  const FitOptions& f = d.fit;
  return with(
      {
          {"data", "", "mslr-data file to fit"},
          {"out", "",
           "run folder for config.ini, metrics.jsonl and checkpoints/ (default with --resume: its folder)"},
          {"resume", "", "continue from a checkpoint file or run folder (its checkpoints/latest)"},
          {"init-from", "",
           "start a new fit from a fitted model (checkpoint file or run folder): its shared parameters and "
           "those of its fitted subjects that this data also has; its model options are the defaults"},
          {"freeze", "",
           std::string("hold these kinds of parameters at their starting values, comma-separated: ") +
               kFreezeKinds + " (shared: every shared parameter; frozen shared parts are not all-reduced)"},
          {"overwrite", default_text(d.overwrite),
           "start afresh in an --out folder that already holds a fit, deleting it", OptionDecl::kFlag},
          {"epochs", default_text(f.epochs), "total epochs (a resumed fit stops at the same total)"},
          {"batches", default_text(f.batches),
           "minibatches per epoch; every subject's training samples are split into this many"},
          {"lr", default_text(f.lr.at(0)), "learning rate"},
          {"lr-schedule", "",
           "learning rates EPOCH:RATE,... from their epoch on (overrides --lr); a change resets Adam"},
          {"adam-beta1", default_text(f.adam.beta1), "Adam beta1"},
          {"adam-beta2", default_text(f.adam.beta2), "Adam beta2"},
          {"adam-eps", default_text(f.adam.eps), "Adam epsilon"},
          {"adam-weight-decay", default_text(f.adam.weight_decay), "Adam L2 weight decay"},
          {"min-var", default_text(f.min_var),
           "lower bound on every noise variance psi, applied after each step"},
          {"seed", default_text(f.seed), "seed of the starting values and minibatch orders"},
          {"subjects", "", "fit only these subjects: comma-separated indices or names (default all)"},
          {"checkpoint-every", default_text(d.checkpoints.every),
           "write a checkpoint every N epochs (0: only the final one)"},
          {"checkpoint-epochs", "", "also checkpoint after these epochs, comma-separated"},
          {"keep-checkpoints", default_text(d.checkpoints.keep),
           "keep the newest N periodic checkpoints (0: keep all)"},
          {"copy-props", default_text(d.copies.props), "store each subject's properties in checkpoints",
           OptionDecl::kFlag},
          {"copy-data", default_text(d.copies.data),
           "store each fitted subject's data, properties and split in checkpoints: mslr predict then needs no "
           "data file",
           OptionDecl::kFlag},
          {"data-on-device", "auto",
           "GPU ranks: true keeps whole subjects on their GPU; false keeps them in page-locked host memory and "
           "copies each minibatch a step ahead on a copy stream; auto: the first when they take at most 75% of "
           "the GPU's free memory",
           OptionDecl::kFlag},
          {"deterministic", default_text(f.deterministic),
           "GPU ranks: LibTorch's deterministic algorithms, so that a fit gives the same numbers on any number "
           "of ranks (index ops without atomics are somewhat slower)",
           OptionDecl::kFlag},
          {"dtype", "float32", "float32 or float64"},
          {"step", "auto",
           "auto: the batched step (hand-written gradients, CPU) where it covers the model, else autograd; "
           "batched: fail when it does not; autograd: the reference step"},
          {"update-interval", default_text(d.update_interval), "print progress every N epochs"},
      },
      {split_options(), runtime_options(), model_options()});
}

FitSettings fit_settings_from(const Options& o) {
  FitSettings s;
  FitOptions& f = s.fit;
  f.epochs = int_option(o, "epochs");
  f.batches = int_option(o, "batches");
  if (!o.has("lr-schedule") && !(o.number("lr") > 0))
    throw UsageError("mslr fit: --lr must be a positive number, got " + o.str("lr"));
  f.lr = as_usage([&] {
    return o.has("lr-schedule") ? LrSchedule::parse(o.str("lr-schedule")) : LrSchedule(o.number("lr"));
  });
  f.adam.beta1 = o.number("adam-beta1");
  f.adam.beta2 = o.number("adam-beta2");
  f.adam.eps = o.number("adam-eps");
  f.adam.weight_decay = o.number("adam-weight-decay");
  f.min_var = o.number("min-var");
  if (o.integer("seed") < 0) throw UsageError("mslr fit: --seed must be >= 0, got " + o.str("seed"));
  f.seed = static_cast<uint64_t>(o.integer("seed"));
  f.split = split_from(o);
  f.gpus_per_rank = int_option(o, "gpus-per-rank");
  if (o.str("data-on-device") != "auto") f.data_on_device = o.flag("data-on-device");
  f.deterministic = o.flag("deterministic");
  const std::string dtype = o.str("dtype");
  if (dtype != "float32" && dtype != "float64")
    throw UsageError("mslr fit: --dtype: '" + dtype + "' is not float32 or float64");
  f.dtype = dtype == "float64" ? at::kDouble : at::kFloat;
  f.step = as_usage([&] { return parse_step_kind(o.str("step")); });
  for (const auto& kind : split(o.has("freeze") ? o.str("freeze") : "", ','))
    if (!kind.empty()) f.freeze.insert(kind);
  as_usage([&] { f.validate(); }, "mslr fit: ");

  const int64_t every = o.integer("checkpoint-every"), keep = o.integer("keep-checkpoints"),
                update = o.integer("update-interval");
  if (every < 0 || keep < 0 || update < 1 || every > INT_MAX || keep > INT_MAX || update > INT_MAX)
    throw UsageError(
        "mslr fit: --checkpoint-every and --keep-checkpoints must be >= 0, --update-interval >= 1");
  s.checkpoints.every = static_cast<int>(every);
  s.checkpoints.keep = static_cast<int>(keep);
  s.update_interval = static_cast<int>(update);
  for (const auto& e : split(o.has("checkpoint-epochs") ? o.str("checkpoint-epochs") : "", ',')) {
    if (e.empty()) continue;
    long v = 0;
    if (!whole_number(e, &v) || v < 1 || v > INT_MAX)
      throw UsageError("mslr fit: --checkpoint-epochs: '" + e + "' is not an epoch number (1 or more)");
    s.checkpoints.epochs.insert(static_cast<int>(v));
  }
  s.copies.data = o.flag("copy-data");
  s.copies.props = o.flag("copy-props") || s.copies.data;  // a checkpoint that predicts alone needs them
  s.overwrite = o.flag("overwrite");
  return s;
}

std::vector<int> subjects_from(const Options& o, const std::vector<SubjectInfo>& subjects,
                               const std::string& data_path) {
  std::vector<int> out;
  if (!o.has("subjects")) return out;
  for (const auto& item : split(o.str("subjects"), ',')) {
    if (item.empty()) continue;
    int named = -1;
    for (size_t i = 0; i < subjects.size(); ++i)
      if (subjects[i].name == item) named = static_cast<int>(i);
    long v = 0;
    const bool numeric = whole_number(item, &v);
    const bool index_in_range = numeric && v >= 0 && v < static_cast<long>(subjects.size());
    if (named >= 0 && index_in_range && named != v)
      throw UsageError(cat("mslr ", o.command(), ": --subjects: '", item, "' is both the name of subject ",
                           named, " and the index of subject '", subjects[v].name, "': write ", named,
                           " for the first or ", subjects[v].name, " for the second"));
    if (named >= 0) {
      out.push_back(named);
    } else if (!numeric) {
      throw UsageError(cat("mslr ", o.command(), ": --subjects: ", data_path, ": no subject '", item, "'"));
    } else if (!index_in_range) {
      throw UsageError(cat("mslr ", o.command(), ": --subjects: index ", item, " is outside [0, ",
                           subjects.size(), ") (", data_path, " has ", subjects.size(), " subjects)"));
    } else {
      out.push_back(static_cast<int>(v));
    }
  }
  if (out.empty())
    throw UsageError("mslr " + o.command() + ": --subjects: '" + o.str("subjects") + "' names no subject");
  return out;
}

}  // namespace mslr
