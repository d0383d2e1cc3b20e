// What a fit shows and records: rank 0 prints (other ranks hold a null console), and rank 0 appends one JSON
// line per epoch to the metrics file, flushed at once, so that a crashed run keeps its log.
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "mslr/core/system.h"
#include "mslr/fit/fitter.h"

namespace mslr {

class Console {
 public:
  // Prints only when `active` (rank 0) and not `quiet`; errors print whenever active.
  Console(bool active, bool quiet) : active_(active), quiet_(quiet) {}
  bool active() const { return active_ && !quiet_; }
  void line(const std::string& text) const;

 private:
  bool active_, quiet_;
};

// One compact progress line for the newest epoch of the log:
// "epoch 12/100  objective 1.234e+04  lr 0.01  nll 3.1e3..4.2e3 (8 subjects)  0.52 s/epoch  ETA 46 s  mem 1.2
// GiB"
std::string progress_line(const FitLog& log, const FitReport& report, int epochs,
                          const std::vector<std::string>& names);

// The metrics file (JSON lines). Rank 0 only; other ranks pass active = false.
class MetricsFile {
 public:
  // Starts the file anew with the entries of `log` (those a resumed run keeps), or creates it empty.
  MetricsFile(const std::string& path, bool active, const FitLog& log, const std::vector<std::string>& names);
  MetricsFile(const MetricsFile&) = delete;  // owns the open file
  MetricsFile& operator=(const MetricsFile&) = delete;
  ~MetricsFile();
  // Appends log entries [first, log.size()).
  void append(const FitLog& log, size_t first);

 private:
  FILE* f_ = nullptr;
  std::string path_;
  std::vector<std::string> names_;
};

std::string human_seconds(double s);

}  // namespace mslr
