// Files of per-subject arrays written by every rank together (the outputs of predict, generate and
// latents): root attributes, then /subjects/<name>/<path> datasets whose shapes every rank knows
// beforehand; each rank writes only its own subjects' values.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "mslr/comm/communicator.h"

namespace mslr {

struct SubjectArraysLayout {
  std::map<std::string, std::string> attributes;  // root attributes ("format" among them)
  std::map<std::string, int64_t> int_attributes;
  struct Array {
    std::string path;            // under /subjects/<name>/, e.g. "values/neurons"
    std::vector<int64_t> shape;  // {} for a single value
    at::ScalarType dtype = at::kFloat;
  };
  struct Subject {
    std::string name;
    std::vector<Array> arrays;
    std::map<std::string, int64_t> attributes;
  };
  std::vector<Subject> subjects;  // every subject, the same on every rank
};

// Collective: every rank passes the same layout and the values of its own subjects (by position in
// layout.subjects, then by array path). Written as `path + ".tmp"` and renamed when complete.
void write_subject_arrays(const std::string& path, const Communicator& comm,
                          const SubjectArraysLayout& layout,
                          const std::map<int, std::map<std::string, at::Tensor>>& mine);

}  // namespace mslr
