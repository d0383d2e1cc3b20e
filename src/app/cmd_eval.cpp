// mslr eval: held-out NLL and R² of a predictions file, per subject and pooled.
#include <cmath>
#include <cstdio>

#include "mslr/app/app.h"
#include "mslr/app/commands.h"
#include "mslr/app/console.h"
#include "mslr/core/error.h"
#include "mslr/core/json.h"
#include "mslr/io/data_file.h"
#include "mslr/io/predictions.h"

namespace mslr {
namespace {

struct Score {
  int64_t samples = 0;
  double nll = 0, res_data = 0, tot_data = 0, res_true = 0, tot_true = 0;
  bool has_true = false;

  void add(const Score& o) {
    samples += o.samples;
    nll += o.nll;
    res_data += o.res_data;
    tot_data += o.tot_data;
    res_true += o.res_true;
    tot_true += o.tot_true;
    has_true = has_true || o.has_true;
  }
  double nll_per_sample() const { return samples ? nll / static_cast<double>(samples) : NAN; }
  double r2_data() const { return tot_data > 0 ? 1.0 - res_data / tot_data : NAN; }
  double r2_true() const { return has_true && tot_true > 0 ? 1.0 - res_true / tot_true : NAN; }
};

// Sums of squared residuals about the prediction and about the per-variable mean.
void squares(const at::Tensor& target, const at::Tensor& pred, double* res, double* tot) {
  const at::Tensor y = target.to(at::kDouble), p = pred.to(at::kDouble);
  *res += (y - p).pow(2).sum().item<double>();
  *tot += (y - y.mean(0)).pow(2).sum().item<double>();
}

JsonObject json_score(const Score& s) {
  return JsonObject()
      .add("samples", s.samples)
      .add("nll", s.nll_per_sample(), 10)
      .add("r2_data", s.r2_data(), 10)
      .add("r2_true", s.r2_true(), 10);
}

}  // namespace

int cmd_eval(const Args& args, const Communicator& world) {
  Options o(
      "eval",
      "Scores a predictions file against its data: NLL per sample pair (summed over variables), R² against\n"
      "the data, and R² against the noise-free means when the data file has them (simulated data).",
      {
          {"predictions", "", "predictions file written by mslr predict"},
          {"data", "", "mslr-data file (default: the one named in the predictions file)"},
          {"json", "false", "print one JSON object instead of a table", OptionDecl::kFlag},
          {"config", "", "INI file with options (the command line wins)"},
      });
  if (!o.parse(args)) return kExitOk;
  if (!o.has("predictions")) throw UsageError("mslr eval: --predictions is required (see mslr eval --help)");
  std::string out;
  run_collectively(world, [&] {
    if (!world.is_root()) return;
    const Predictions pred = read_predictions(o.str("predictions"));
    const LocalCommunicator one;
    DataFile data(o.has("data") ? o.str("data") : pred.header.data, one);
    std::vector<std::pair<std::string, Score>> scores;
    Score pooled;
    for (size_t i = 0; i < pred.header.subjects.size(); ++i) {
      const auto& h = pred.header.subjects[i];
      const auto& p = pred.subjects[i];
      const int s = data.index_of(h.name);
      DataReadOptions r;
      r.true_means = true;
      r.props = false;
      const SubjectData d = data.read(s, r);
      const std::string who = cat(o.str("predictions"), ": subject '", h.name, "'");
      const SubjectInfo& info = data.subjects()[s];
      if (p.times.numel() > 0) {
        const int64_t lo = p.times.min().item<int64_t>(), hi = p.times.max().item<int64_t>();
        MSLR_CHECK(lo >= 0 && hi < info.n_time, who, " has times in [", lo, ", ", hi, "], outside the ",
                   info.n_time, " time points of ", data.path());
      }
      Score sc;
      sc.samples = h.samples;
      sc.nll = p.nll;
      for (const auto& [g, mean] : p.means) {
        MSLR_CHECK(d.groups.count(g), who, " predicts group '", g, "', which ", data.path(),
                   " does not have");
        MSLR_CHECK(mean.size(1) == info.widths.at(g), who, ": predictions of group '", g, "' have ",
                   mean.size(1), " variables, the data has ", info.widths.at(g));
        squares(gather_rows(d.group(g), p.times, 0), mean, &sc.res_data, &sc.tot_data);
        if (d.true_means.count(g)) {
          sc.has_true = true;
          squares(gather_rows(d.true_means.at(g), p.times, 0), mean, &sc.res_true, &sc.tot_true);
        }
      }
      pooled.add(sc);
      scores.emplace_back(h.name + (h.in_fit ? "" : " *"), sc);
    }
    if (o.flag("json")) {
      JsonObject subjects;
      for (size_t i = 0; i < scores.size(); ++i)
        subjects.add(pred.header.subjects[i].name, json_score(scores[i].second));
      out = JsonObject().add("subjects", subjects).add("pooled", json_score(pooled)).str();
    } else {
      char line[256];
      std::snprintf(line, sizeof line, "%-24s %9s %14s %9s %9s\n", "subject", "samples", "nll/sample",
                    "r2_data", "r2_true");
      out = line;
      for (const auto& [name, sc] : scores) {
        std::snprintf(line, sizeof line, "%-24s %9lld %14.6g %9.4f %9.4f\n", name.c_str(),
                      (long long)sc.samples, sc.nll_per_sample(), sc.r2_data(), sc.r2_true());
        out += line;
      }
      std::snprintf(line, sizeof line, "%-24s %9lld %14.6g %9.4f %9.4f", "pooled", (long long)pooled.samples,
                    pooled.nll_per_sample(), pooled.r2_data(), pooled.r2_true());
      out += line;
      for (const auto& s : pred.header.subjects)
        if (!s.in_fit) {
          out += "\n(* not in the fit: modes from its properties alone)";
          break;
        }
    }
  });
  if (world.is_root()) std::printf("%s\n", out.c_str());
  return kExitOk;
}

}  // namespace mslr
