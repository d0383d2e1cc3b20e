#include "mslr/app/console.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "mslr/core/error.h"
#include "mslr/core/json.h"

namespace mslr {

void Console::line(const std::string& text) const {
  if (!active()) return;
  std::printf("%s\n", text.c_str());
  std::fflush(stdout);
}

std::string human_seconds(double s) {
  char buf[32];
  if (s < 1)
    std::snprintf(buf, sizeof buf, "%.0f ms", s * 1e3);
  else if (s < 60)
    std::snprintf(buf, sizeof buf, "%.1f s", s);
  else if (s < 3600)
    std::snprintf(buf, sizeof buf, "%dm%02ds", static_cast<int>(s) / 60, static_cast<int>(s) % 60);
  else
    std::snprintf(buf, sizeof buf, "%dh%02dm", static_cast<int>(s) / 3600, static_cast<int>(s) % 3600 / 60);
  return buf;
}

std::string progress_line(const FitLog& log, const FitReport& r, int epochs,
                          const std::vector<std::string>& names) {
  const size_t e = log.size() - 1;
  char buf[512];
  std::string s;
  std::snprintf(buf, sizeof buf, "epoch %d/%d  objective %.6g  lr %g", log.epoch[e] + 1, epochs,
                log.objective[e], log.lr[e]);
  s += buf;
  const auto& nll = log.subject_nll[e];
  if (nll.size() <= 4) {
    for (size_t k = 0; k < nll.size(); ++k) {
      std::snprintf(buf, sizeof buf, "  %s %.5g", names[log.fitted[k]].c_str(), nll[k]);
      s += buf;
    }
  } else {
    const auto [lo, hi] = std::minmax_element(nll.begin(), nll.end());
    std::snprintf(buf, sizeof buf, "  subject nll %.4g..%.4g (%zu subjects)", *lo, *hi, nll.size());
    s += buf;
  }
  const int left = epochs - (log.epoch[e] + 1);
  std::snprintf(buf, sizeof buf, "  %s/epoch  ETA %s", human_seconds(r.seconds_per_epoch).c_str(),
                human_seconds(r.seconds_per_epoch * left).c_str());
  s += buf;
  if (!r.memory.empty()) {
    s += "  mem";
    for (long long m : r.memory)
      s += " " + human_bytes(m);
  }
  return s;
}

MetricsFile::MetricsFile(const std::string& path, bool active, const FitLog& log,
                         const std::vector<std::string>& names)
    : names_(names) {
  if (!active) return;
  path_ = path;
  f_ = std::fopen(path.c_str(), "w");
  MSLR_CHECK(f_, path, ": cannot write the metrics file: ", std::strerror(errno));
  append(log, 0);
}

MetricsFile::~MetricsFile() {
  if (f_) std::fclose(f_);
}

void MetricsFile::append(const FitLog& log, size_t first) {
  if (!f_) return;
  for (size_t e = first; e < log.size(); ++e) {
    JsonObject nll;
    for (size_t k = 0; k < log.fitted.size(); ++k)
      nll.add(names_[log.fitted[k]], log.subject_nll[e][k]);
    const std::string line = JsonObject()
                                 .add("epoch", log.epoch[e])
                                 .add("elapsed", log.elapsed[e], 10)
                                 .add("objective", log.objective[e])
                                 .add("lr", log.lr[e])
                                 .add("subject_nll", nll)
                                 .str();
    std::fprintf(f_, "%s\n", line.c_str());
  }
  MSLR_CHECK(std::fflush(f_) == 0 && !std::ferror(f_), path_,
             ": cannot write the metrics file: ", std::strerror(errno));
}

}  // namespace mslr
