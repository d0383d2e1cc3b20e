#include "mslr/data/subject_data.h"

#include <cmath>

#include "mslr/core/error.h"

namespace mslr {

int64_t SubjectData::n_time() const {
  return groups.empty() ? 0 : groups.begin()->second.size(0);
}

const at::Tensor& SubjectData::group(const std::string& g) const {
  auto it = groups.find(g);
  MSLR_CHECK(it != groups.end(), "subject '", name, "' has no group '", g, "'");
  return it->second;
}

void SubjectData::validate() const {
  MSLR_CHECK(!groups.empty(), "subject '", name, "' has no groups");
  const int64_t t = n_time();
  for (const auto& [g, x] : groups) {
    MSLR_CHECK(x.dim() == 2, "subject '", name, "', group '", g, "' must be [T, d], has ", x.dim(),
               " dimensions");
    MSLR_CHECK(x.size(0) == t, "subject '", name, "', group '", g, "' has ", x.size(0),
               " time points, group '", groups.begin()->first, "' has ", t);
  }
  for (const auto& [g, p] : props) {
    auto it = groups.find(g);
    MSLR_CHECK(it != groups.end(), "subject '", name, "' has properties for group '", g,
               "' but no such group");
    MSLR_CHECK(p.dim() == 2 && p.size(0) == it->second.size(1), "subject '", name, "': properties of group '",
               g, "' have ", p.dim() == 2 ? p.size(0) : -1, " rows, the group has ", it->second.size(1),
               " variables");
  }
  if (segments.defined()) validate_segments(segments, t, name);
  for (const auto& [g, m] : true_means) {
    auto it = groups.find(g);
    MSLR_CHECK(it != groups.end() && m.sizes() == it->second.sizes(), "subject '", name,
               "': true means of group '", g, "' do not match the group's shape");
  }
}

void validate_segments(const at::Tensor& segments, int64_t n_time, const std::string& subject) {
  MSLR_CHECK(segments.dim() == 2 && segments.size(1) == 2, "subject '", subject,
             "': segments must be [k, 2]");
  const at::Tensor seg = segments.to(at::kLong).contiguous();
  auto s = seg.accessor<int64_t, 2>();
  int64_t prev_end = 0;
  for (int64_t i = 0; i < seg.size(0); ++i) {
    MSLR_CHECK(s[i][0] >= prev_end && s[i][0] < s[i][1] && s[i][1] <= n_time, "subject '", subject,
               "': segment ", i, " [", s[i][0], ", ", s[i][1],
               ") must be non-empty, after the previous one and within [0, ", n_time, ")");
    prev_end = s[i][1];
  }
}

std::map<std::string, int64_t> property_counts(const std::vector<SubjectInfo>& subjects) {
  std::map<std::string, int64_t> n;
  for (const auto& s : subjects)
    n.insert(s.n_props.begin(), s.n_props.end());
  return n;
}

at::Tensor clip_segments(const at::Tensor& segments, int64_t n_time) {
  if (!segments.defined()) return segments;
  std::vector<int64_t> kept;
  const at::Tensor seg = segments.to(at::kLong).contiguous();
  auto s = seg.accessor<int64_t, 2>();
  for (int64_t i = 0; i < seg.size(0); ++i)
    if (s[i][0] < n_time) {
      kept.push_back(s[i][0]);
      kept.push_back(std::min(s[i][1], n_time));
    }
  return at::tensor(kept, at::kLong).view({-1, 2});
}

int64_t SubjectData::bytes() const {
  int64_t b = 0;
  for (const auto* m : {&groups, &props, &true_means})
    for (const auto& [g, x] : *m)
      b += x.numel() * static_cast<int64_t>(x.element_size());
  return b;
}

at::Tensor sample_times(const at::Tensor& segments, int64_t begin, int64_t end) {
  std::vector<int64_t> times;
  const at::Tensor seg = segments.to(at::kLong).contiguous();
  auto s = seg.accessor<int64_t, 2>();
  for (int64_t i = 0; i < seg.size(0); ++i) {
    const int64_t lo = std::max(s[i][0], begin), hi = std::min(s[i][1], end);
    for (int64_t t = lo + 1; t < hi; ++t)
      times.push_back(t);
  }
  return at::tensor(times, at::kLong);
}

at::Tensor gather_rows(const at::Tensor& series, const at::Tensor& times, int64_t shift) {
  return series.index_select(0, shift == 0 ? times : times + shift);
}

void Split::validate() const {
  if (!explicit_ranges) {
    MSLR_CHECK(train_fraction > 0.0 && train_fraction <= 1.0, "train-fraction must be in (0, 1], got ",
               train_fraction);
    return;
  }
  for (const auto* r : {&train_range, &test_range})
    MSLR_CHECK(r->begin >= 0 && r->end > r->begin,
               "train-range/test-range must be START:END with 0 <= START < END, got ", r->begin, ":", r->end);
}

TimeRange Split::train(int64_t n_time) const {
  if (explicit_ranges) return train_range;
  return {0, static_cast<int64_t>(std::llround(train_fraction * static_cast<double>(n_time)))};
}

TimeRange Split::test(int64_t n_time) const {
  if (explicit_ranges) return test_range;
  return {train(n_time).end, n_time};
}

int64_t end_of(const TimeRanges& ranges) {
  return ranges.empty() ? 0 : ranges.back().end;
}

TimeRanges Split::train(const SubjectInfo& info) const {
  if (!from_data) return {train(info.n_time)};
  MSLR_CHECK(info.has_split, "subject '", info.name, "' has no split in the data file (/subjects/", info.name,
             "/split/train and test), which --split-from-data asks for");
  return info.train_ranges;
}

TimeRanges Split::test(const SubjectInfo& info) const {
  if (!from_data) return {test(info.n_time)};
  train(info);  // the same check
  return info.test_ranges;
}

std::string Split::describe() const {
  if (from_data) return "per subject from the data file";
  if (!explicit_ranges) return cat("train-fraction ", train_fraction);
  return cat("train ", train_range.begin, ":", train_range.end, ", test ", test_range.begin, ":",
             test_range.end);
}

TimeRange Split::parse_range(const std::string& text, const char* option) {
  const auto colon = text.find(':');
  TimeRange r;
  try {
    size_t a = 0, b = 0;
    MSLR_CHECK(colon != std::string::npos, "");
    r.begin = std::stoll(text.substr(0, colon), &a);
    r.end = std::stoll(text.substr(colon + 1), &b);
    MSLR_CHECK(a == colon && b == text.size() - colon - 1, "");
  } catch (const std::exception&) {
    fail(option, ": '", text, "' is not START:END");
  }
  MSLR_CHECK(r.begin >= 0 && r.end > r.begin, option, ": '", text, "' needs 0 <= START < END");
  return r;
}

at::Tensor SubjectInfo::segments_or_whole() const {
  if (segments.defined()) return segments;
  return at::tensor(std::vector<int64_t>{0, n_time}, at::kLong).view({1, 2});
}

at::Tensor SubjectInfo::times_in(const TimeRange& range) const {
  MSLR_CHECK(range.end <= n_time, "subject '", name, "' has ", n_time, " time points; the range ",
             range.begin, ":", range.end, " goes beyond it");
  return sample_times(segments_or_whole(), range.begin, range.end);
}

at::Tensor SubjectInfo::times_in(const TimeRanges& ranges) const {
  std::vector<at::Tensor> parts;
  for (const auto& r : ranges)
    parts.push_back(times_in(r));
  return parts.empty() ? at::zeros({0}, at::kLong) : at::cat(parts);
}

}  // namespace mslr
