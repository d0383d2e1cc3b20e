// One subject's recordings: named variable groups as time series, their variables' properties, and the
// contiguous segments the recording is made of. Sample pairs (t-1, t) never cross a segment boundary.
#pragma once

#include <ATen/ATen.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

namespace mslr {

struct SubjectData {
  std::string name;
  std::map<std::string, at::Tensor> groups;  // group -> [T, d]
  std::map<std::string, at::Tensor> props;   // group -> [d, n_props] (optional per group)
  // Given modes [d, K] of groups whose model source is "given", by group or by slot name ("p.<group>",
  // "u.<group>", when a group's two sides differ).
  std::map<std::string, at::Tensor> modes;
  at::Tensor segments;                           // [k, 2] int64 [start, end); undefined = one segment [0, T)
  std::map<std::string, at::Tensor> true_means;  // group -> [T, d], row t the noise-free mean given t-1
  std::map<std::string, at::Tensor> truth;  // anything else a simulator knows, by path (e.g. "psi/neurons")

  int64_t n_time() const;
  // The group's series; throws "subject 'S' has no group 'G'".
  const at::Tensor& group(const std::string& name) const;
  // Checks that groups share T, props rows match group widths and segments are sorted, disjoint and in range.
  void validate() const;
  // Bytes held by the groups, props and true means.
  int64_t bytes() const;
};

// Checks that segments [k, 2] are sorted, disjoint, non-empty and inside [0, n_time); throws naming the
// subject.
void validate_segments(const at::Tensor& segments, int64_t n_time, const std::string& subject);

// The segments cut at `n_time` (segments that start at or after it are dropped): for data read only in part.
at::Tensor clip_segments(const at::Tensor& segments, int64_t n_time);

// The times t of the sample pairs (t-1, t) with both points inside [begin, end) and inside one segment.
// segments: [k, 2] int64. Returns int64 [n].
at::Tensor sample_times(const at::Tensor& segments, int64_t begin, int64_t end);

// Rows t + shift of a [T, d] series for each t in `times` [n]: [n, d]. shift -1 gives the inputs of a
// minibatch of sample pairs, 0 its outputs.
at::Tensor gather_rows(const at::Tensor& series, const at::Tensor& times, int64_t shift);

// A range of time points [begin, end).
struct TimeRange {
  int64_t begin = 0, end = 0;
};
// Time points as sorted, disjoint ranges (a part of a per-subject split).
using TimeRanges = std::vector<TimeRange>;
// The end of the last range (0 when there is none): how far a reader must read.
int64_t end_of(const TimeRanges& ranges);

struct SubjectInfo;

// The train/test split by time (docs/DESIGN.md §5): by default the first round(f·T) points are training data
// and the rest test data; explicit ranges, when given, apply to every subject instead; with `from_data` each
// subject's own parts come from its data file (/subjects/<name>/split, e.g. cross-validation folds). Sample
// pairs stay inside a part.
struct Split {
  double train_fraction = 0.8;
  bool explicit_ranges = false;
  TimeRange train_range, test_range;
  bool from_data = false;

  // The parts of a subject. Throws, naming the subject, when `from_data` and its file gave it no split.
  TimeRanges train(const SubjectInfo& info) const;
  TimeRanges test(const SubjectInfo& info) const;
  // The parts by the rule shared by all subjects (not `from_data`).
  TimeRange train(int64_t n_time) const;
  TimeRange test(int64_t n_time) const;
  void validate() const;         // throws naming the option and the rule
  std::string describe() const;  // "train-fraction 0.8" or "train 0:1000, test 1000:1500"
  static TimeRange parse_range(const std::string& text, const char* option);  // "START:END"
};

// What the fitter and the readers know about a subject before any of its data is read.
struct SubjectInfo {
  std::string name;
  // group -> number of variables; group -> number of properties per variable (groups with properties)
  std::map<std::string, int64_t> widths, n_props;
  int64_t n_time = 0;
  at::Tensor segments;  // [k, 2] int64; undefined = one segment
  bool has_true_means = false;
  // Its own train/test split from the data file (/subjects/<name>/split), when it has one.
  bool has_split = false;
  TimeRanges train_ranges, test_ranges;

  at::Tensor segments_or_whole() const;
  // The times t of the sample pairs (t-1, t) inside `range` and inside one segment.
  at::Tensor times_in(const TimeRange& range) const;
  at::Tensor times_in(const TimeRanges& ranges) const;
};

// Properties per variable of every group that has them, from the first subject that has the group (subject
// models check the others against these).
std::map<std::string, int64_t> property_counts(const std::vector<SubjectInfo>& subjects);

}  // namespace mslr
