// The predictions file written by `mslr predict`, gathered from all ranks into one HDF5 file
// (docs/DESIGN.md §5):
//
//   /                                  attrs format="mslr-predictions", version=1, checkpoint, data, split,
//                                            config (the options predict used)
//   /subjects/<name>/times             int64 [n]    the t of each sample pair (t-1, t)
//   /subjects/<name>/<output group>    float [n, d] predicted means
//   /subjects/<name>/nll               float64      NLL of the data at those samples, summed
//                                      attrs samples, in_fit (1 when the subject was fitted, 0 when its modes
//                                      came from its properties alone)
#pragma once

#include <map>
#include <string>
#include <vector>

#include "mslr/comm/communicator.h"

namespace mslr {

struct PredictionsHeader {
  std::string checkpoint, data, split;
  std::string config;  // the resolved predict options
  struct Subject {
    std::string name;
    int64_t samples = 0;
    bool in_fit = false;
    std::vector<std::pair<std::string, int64_t>> outputs;  // (group, width)
  };
  std::vector<Subject> subjects;  // every subject, the same on every rank
};

struct SubjectPredictionData {
  at::Tensor times;                         // [n] int64
  std::map<std::string, at::Tensor> means;  // group -> [n, d]
  double nll = 0.0;
};

// Collective: every rank passes the same header and its own subjects' predictions (by position in
// header.subjects). Written as `path + ".tmp"` and renamed when complete.
void write_predictions(const std::string& path, const Communicator& comm, const PredictionsHeader& header,
                       const std::map<int, SubjectPredictionData>& mine);

// Reads a predictions file (one process).
struct Predictions {
  PredictionsHeader header;
  std::vector<SubjectPredictionData> subjects;  // like header.subjects
};
Predictions read_predictions(const std::string& path);

}  // namespace mslr
