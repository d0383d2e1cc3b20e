// mslr simulate: write the built-in ground-truth scenario as an mslr-data file.
#include <cstdio>

#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/app/console.h"
#include "mslr/core/error.h"
#include "mslr/data/simulate.h"
#include "mslr/io/data_file.h"
#include "mslr/io/paths.h"

namespace mslr {

int cmd_simulate(const Args& args, const Communicator& world) {
  const SimulateOptions d;
  Options o(
      "simulate",
      "Writes a simulated multi-subject dataset with its ground truth (true modes, noise, noise-free means)\n"
      "and the model that generated it, which mslr fit uses when given no model options.",
      {
          {"out", "", "mslr-data file to write"},
          {"subjects", default_text(d.subjects), "number of subjects"},
          {"neurons-min", default_text(d.neurons_min), "fewest neurons of a subject"},
          {"neurons-max", default_text(d.neurons_max), "most neurons of a subject"},
          {"time-points", default_text(d.time_points), "time points per subject"},
          {"stim-dims", default_text(d.stim_dims), "stimulus dimensions"},
          {"modes", default_text(d.modes), "latent dimensions read out from the neurons"},
          {"noise", default_text(d.noise), "noise variance of every neuron"},
          {"stability", default_text(d.stability), "spectral radius of the latent recurrence, in (0, 1)"},
          {"seed", default_text(d.seed), "random seed"},
          {"config", "", "INI file with options (the command line wins)"},
          {"quiet", "false", "print nothing but errors", OptionDecl::kFlag},
      });
  if (!o.parse(args)) return kExitOk;
  SimulateOptions s;
  s.subjects = static_cast<int>(o.integer("subjects"));
  s.neurons_min = o.integer("neurons-min");
  s.neurons_max = o.integer("neurons-max");
  s.time_points = o.integer("time-points");
  s.stim_dims = o.integer("stim-dims");
  s.modes = o.integer("modes");
  s.noise = o.number("noise");
  s.stability = o.number("stability");
  s.seed = static_cast<uint64_t>(o.integer("seed"));
  try {
    s.validate();
  } catch (const Error& e) {
    throw UsageError("mslr simulate: " + std::string(e.what()));
  }
  const std::string out = o.str("out");
  run_collectively(world, [&] {
    check_output_file(out, "--out", {}, {"mslr-data", "simulate", "a simulated data file"});
  });
  const Console console(world.is_root(), o.flag("quiet"));
  run_collectively(world, [&] {
    if (!world.is_root()) return;
    const auto subjects = simulate(s);
    write_data_file(
        out, subjects,
        {{"model", simulated_model_config(s)}, {"simulate", o.resolved({"config", "out", "quiet"})}});
    int64_t neurons = 0;
    for (const auto& d : subjects)
      neurons += d.groups.at("neurons").size(1);
    console.line(cat("simulated ", subjects.size(), " subjects, ", neurons, " neurons in all, ",
                     s.time_points, " time points each: ", out));
  });
  return kExitOk;
}

}  // namespace mslr
