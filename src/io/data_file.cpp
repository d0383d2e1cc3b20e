#include "mslr/io/data_file.h"

#include <cmath>
#include <iomanip>
#include <sstream>

#include "h5.h"
#include "mslr/core/error.h"
#include "mslr/core/system.h"
#include "mslr/io/atomic_file.h"
#include "mslr/model/params.h"

namespace mslr {
namespace {

constexpr const char* kFormat = "mslr-data";
constexpr int64_t kVersion = 1;

// A file that declares this many times more data than it stores is damaged or was never written: no
// compression of real data comes near it (deflate's limit is about 1000:1).
constexpr double kMostCompression = 1 << 14;

// The checks every dataset of a subject must pass before its declared shape is believed: a dataset of numbers
// (integers when `integers`), of `dims` dimensions, storing a plausible share of the bytes it declares.
// Returns its shape; `what` names it in messages ("subject 'S', group 'G'").
std::vector<int64_t> checked_dataset(const h5::Location& loc, const std::string& path,
                                     const std::string& what, size_t dims, bool integers) {
  const std::string& file = loc.file_name();
  const h5::ObjectInfo i = loc.info(path);
  MSLR_CHECK(i.kind == h5::ObjectInfo::kDataset, file, ": ", what, " is ", i.kind_name(), ", not a dataset (",
             loc.full_path(path), ")");
  MSLR_CHECK(i.type == h5::ObjectInfo::kFloat || i.type == h5::ObjectInfo::kInteger, file, ": ", what,
             " holds ", i.type_name(), ", not numbers");
  MSLR_CHECK(!integers || i.type == h5::ObjectInfo::kInteger, file, ": ", what,
             " holds floating-point numbers; it must hold integers");
  MSLR_CHECK(i.shape.size() == dims, file, ": ", what, " must have ", dims, " dimensions, has ",
             i.shape.size());
  double declared = static_cast<double>(i.element_size);
  for (int64_t n : i.shape)
    declared *= static_cast<double>(n);
  MSLR_CHECK(declared <= kMostCompression * static_cast<double>(i.stored_bytes) + 65536.0, file, ": ", what,
             " declares ", shape_str(i.shape), " (", human_bytes(declared), ") but the file stores only ",
             human_bytes(static_cast<double>(i.stored_bytes)), " of it: damaged or never written");
  return i.shape;
}

// One part ("train" or "test") of a subject's split: [k, 2] ranges [start, end), sorted and disjoint, or a
// [T] mask of 0/1 whose runs of 1 are the ranges.
TimeRanges read_split_part(const h5::Location& split, const std::string& part, const std::string& who,
                           int64_t n_time, const std::string& file) {
  const std::string what = cat(who, ", split/", part);
  MSLR_CHECK(split.exists(part), file, ": ", who, ": 'split' has no '", part,
             "' (it needs both train and test: [k, 2] ranges or a [T] 0/1 mask)");
  const size_t dims = split.info(part).shape.size() == 1 ? 1 : 2;
  const auto shape = checked_dataset(split, part, what, dims, true);
  const at::Tensor v = split.read(part, at::kLong).contiguous();
  const int64_t* x = v.data_ptr<int64_t>();
  TimeRanges out;
  if (dims == 1) {
    MSLR_CHECK(shape[0] == n_time, file, ": ", what, " is a mask of ", shape[0],
               " time points, the subject has ", n_time);
    for (int64_t t = 0; t < n_time; ++t) {
      MSLR_CHECK(x[t] == 0 || x[t] == 1, file, ": ", what, " is a mask and must hold 0 or 1, holds ", x[t],
                 " at time ", t);
      if (x[t] && (t == 0 || !x[t - 1])) out.push_back({t, t + 1});
      if (x[t]) out.back().end = t + 1;
    }
    return out;
  }
  MSLR_CHECK(shape[1] == 2, file, ": ", what, " must be [k, 2] ranges or a [T] mask, is ", shape_str(shape));
  for (int64_t i = 0; i < shape[0]; ++i) {
    const TimeRange r{x[2 * i], x[2 * i + 1]};
    MSLR_CHECK(r.begin >= end_of(out) && r.begin < r.end && r.end <= n_time, file, ": ", what, ": range ", i,
               " [", r.begin, ", ", r.end, ") must be non-empty, after the previous one and within [0, ",
               n_time, ")");
    out.push_back(r);
  }
  return out;
}

SubjectInfo describe_subject(const h5::Location& subjects, const std::string& name, const std::string& file) {
  const std::string who = cat("subject '", name, "'");
  const h5::ObjectInfo kind = subjects.info(name);
  MSLR_CHECK(kind.kind == h5::ObjectInfo::kGroup, file, ": ", who, " is ", kind.kind_name(), ", not a group");
  const h5::Location s = subjects.group(name);
  SubjectInfo info;
  info.name = name;
  MSLR_CHECK(s.info("groups").kind == h5::ObjectInfo::kGroup, file, ": ", who, " has no group 'groups'");
  const h5::Location groups = s.group("groups");
  for (const std::string& g : groups.children()) {
    const std::string what = cat(who, ", group '", g, "'");
    const auto shape = checked_dataset(groups, g, what, 2, false);
    MSLR_CHECK(shape[0] > 0 && shape[1] > 0, file, ": ", what, " is ", shape_str(shape),
               ": it needs at least one time point and one variable");
    if (info.widths.empty()) info.n_time = shape[0];
    MSLR_CHECK(shape[0] == info.n_time, file, ": ", what, " has ", shape[0],
               " time points, the subject's other groups have ", info.n_time);
    info.widths[g] = shape[1];
  }
  MSLR_CHECK(!info.widths.empty(), file, ": ", who, " has no groups");
  if (s.exists("props")) {
    MSLR_CHECK(s.info("props").kind == h5::ObjectInfo::kGroup, file, ": ", who, ": 'props' must be a group");
    const h5::Location props = s.group("props");
    for (const std::string& g : props.children()) {
      const std::string what = cat(who, ", properties of group '", g, "'");
      MSLR_CHECK(info.widths.count(g), file, ": ", who, " has properties for group '", g,
                 "' but no such group");
      const auto shape = checked_dataset(props, g, what, 2, false);
      MSLR_CHECK(shape[0] == info.widths[g], file, ": ", who, ": properties of group '", g, "' have ",
                 shape[0], " rows, the group has ", info.widths[g], " variables");
      info.n_props[g] = shape[1];
    }
  }
  if (s.exists("segments")) {
    const auto shape = checked_dataset(s, "segments", who + ", 'segments'", 2, true);
    MSLR_CHECK(shape[1] == 2, file, ": ", who, ": segments must be [k, 2], are ", shape_str(shape));
    info.segments = s.read("segments", at::kLong);
    try {
      validate_segments(info.segments, info.n_time, name);
    } catch (const Error& e) {
      fail(file, ": ", e.what());
    }
  }
  if (s.exists("modes")) {
    MSLR_CHECK(s.info("modes").kind == h5::ObjectInfo::kGroup, file, ": ", who, ": 'modes' must be a group");
    const h5::Location modes = s.group("modes");
    for (const std::string& m : modes.children()) {
      const std::string group = m.rfind("p.", 0) == 0 || m.rfind("u.", 0) == 0 ? m.substr(2) : m;
      const std::string what = cat(who, ", given modes '", m, "'");
      MSLR_CHECK(info.widths.count(group), file, ": ", what,
                 " name no group of the subject (modes/GROUP, "
                 "modes/p.GROUP or modes/u.GROUP)");
      const auto shape = checked_dataset(modes, m, what, 2, false);
      MSLR_CHECK(shape[0] == info.widths[group] && shape[1] > 0, file, ": ", what, " are ", shape_str(shape),
                 ": they need a row for each of the ", info.widths[group], " variables of group '", group,
                 "' and at least one column");
    }
  }
  if (s.exists("split")) {
    MSLR_CHECK(s.info("split").kind == h5::ObjectInfo::kGroup, file, ": ", who,
               ": 'split' must be a group holding 'train' and 'test'");
    const h5::Location split = s.group("split");
    info.train_ranges = read_split_part(split, "train", who, info.n_time, file);
    info.test_ranges = read_split_part(split, "test", who, info.n_time, file);
    info.has_split = true;
  }
  if (s.exists("truth/means")) {
    const h5::Location means = s.group("truth/means");
    for (const std::string& g : means.children()) {
      if (!info.widths.count(g)) continue;
      const std::string what = cat(who, ", true means of group '", g, "'");
      const auto shape = checked_dataset(means, g, what, 2, false);
      MSLR_CHECK(shape[0] == info.n_time && shape[1] == info.widths[g], file, ": ", what, " are ",
                 shape_str(shape), ", the group is [", info.n_time, ", ", info.widths[g], "]");
    }
    info.has_true_means = true;
  }
  return info;
}

// The subject descriptions as text, for the broadcast from rank 0: per subject its name, T, truth flag, the
// group -> width and group -> property-count maps (size, then quoted name and value pairs), and the segments.
void write_map(std::ostream& os, const std::map<std::string, int64_t>& m) {
  os << ' ' << m.size();
  for (const auto& [k, v] : m)
    os << ' ' << std::quoted(k) << ' ' << v;
}

void read_map(std::istream& is, std::map<std::string, int64_t>& m) {
  size_t n = 0;
  is >> n;
  for (size_t j = 0; j < n; ++j) {
    std::string k;
    int64_t v = 0;
    is >> std::quoted(k) >> v;
    m[k] = v;
  }
}

std::string serialise(const std::vector<SubjectInfo>& infos) {
  std::ostringstream os;
  os << infos.size() << '\n';
  for (const auto& i : infos) {
    os << std::quoted(i.name) << ' ' << i.n_time << ' ' << i.has_true_means;
    write_map(os, i.widths);
    write_map(os, i.n_props);
    const at::Tensor seg = i.segments.defined() ? i.segments.contiguous() : at::Tensor();
    os << ' ' << (seg.defined() ? seg.size(0) : -1);
    for (int64_t j = 0; seg.defined() && j < seg.numel(); ++j)
      os << ' ' << seg.data_ptr<int64_t>()[j];
    os << ' ' << i.has_split;
    for (const auto* part : {&i.train_ranges, &i.test_ranges}) {
      os << ' ' << part->size();
      for (const auto& r : *part)
        os << ' ' << r.begin << ' ' << r.end;
    }
    os << '\n';
  }
  return os.str();
}

std::vector<SubjectInfo> deserialise(const std::string& text) {
  std::istringstream is(text);
  size_t n = 0;
  is >> n;
  std::vector<SubjectInfo> infos(n);
  for (auto& i : infos) {
    is >> std::quoted(i.name) >> i.n_time >> i.has_true_means;
    read_map(is, i.widths);
    read_map(is, i.n_props);
    int64_t k = 0;
    is >> k;
    if (k >= 0) {
      std::vector<int64_t> v(static_cast<size_t>(2 * k));
      for (auto& x : v)
        is >> x;
      i.segments = at::tensor(v, at::kLong).view({k, 2});
    }
    is >> i.has_split;
    for (auto* part : {&i.train_ranges, &i.test_ranges}) {
      size_t n_ranges = 0;
      is >> n_ranges;
      part->resize(n_ranges);
      for (auto& r : *part)
        is >> r.begin >> r.end;
    }
  }
  return infos;
}

template <class T>
void first_non_finite(const T* p, int64_t n, int64_t* where) {
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(p[i])) {
      *where = i;
      return;
    }
}

}  // namespace

void check_finite(const at::Tensor& x, const std::string& where, const char* row_name, const char* col_name) {
  int64_t bad = -1;
  const at::Tensor c = x.contiguous();
  if (c.scalar_type() == at::kFloat)
    first_non_finite(c.data_ptr<float>(), c.numel(), &bad);
  else if (c.scalar_type() == at::kDouble)
    first_non_finite(c.data_ptr<double>(), c.numel(), &bad);
  if (bad < 0) return;
  const double v = c.view({-1})[bad].item<double>();
  const char* what = std::isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
  if (c.dim() != 2 || !col_name) fail(where, " has a non-finite value (", what, ") at ", row_name, " ", bad);
  const int64_t cols = c.size(1);
  fail(where, " has a non-finite value (", what, ") at ", row_name, " ", bad / cols, ", ", col_name, " ",
       bad % cols);
}

DataFile::DataFile(const std::string& path, const Communicator& comm) : path_(path) {
  std::string described;
  run_collectively(comm, [&] { file_ = std::make_unique<h5::File>(path, h5::File::kRead, &comm); });
  run_collectively(comm, [&] {
    if (!comm.is_root()) return;
    MSLR_CHECK(file_->has_attr("format"), path,
               ": has no 'format' attribute; not an mslr-data file (write one with "
               "tools/mslr_data.py)");
    const std::string format = file_->attr_string("format");
    MSLR_CHECK(format == kFormat, path, ": format is '", format, "', expected '", kFormat, "'");
    const int64_t version = file_->has_attr("version") ? file_->attr_int("version") : -1;
    MSLR_CHECK(version == kVersion, path, ": mslr-data version ", version,
               " is not supported (this mslr reads version ", kVersion, ")");
    MSLR_CHECK(file_->exists("subjects"), path, ": has no '/subjects' group");
    const h5::Location subjects = file_->group("subjects");
    std::vector<SubjectInfo> infos;
    for (const std::string& name : subjects.children())
      infos.push_back(describe_subject(subjects, name, path));
    MSLR_CHECK(!infos.empty(), path, ": '/subjects' is empty");
    described = serialise(infos);
    if (file_->has_attr("model")) model_config_ = file_->attr_string("model");
  });
  infos_ = deserialise(comm.broadcast_string(described, 0));
  model_config_ = comm.broadcast_string(model_config_, 0);
}

DataFile::~DataFile() = default;

int DataFile::index_of(const std::string& name) const {
  for (size_t i = 0; i < infos_.size(); ++i)
    if (infos_[i].name == name) return static_cast<int>(i);
  fail(path_, ": no subject '", name, "'");
}

SubjectData DataFile::read(int subject, const DataReadOptions& opt) const {
  const SubjectInfo& info = infos_.at(subject);
  const h5::Location s = file_->group("subjects/" + info.name);
  SubjectData d;
  d.name = info.name;
  const int64_t rows = opt.rows < 0 ? info.n_time : std::min(opt.rows, info.n_time);
  d.segments = clip_segments(info.segments, rows);
  const std::string where = cat(path_, ": subject '", info.name, "'");
  for (const auto& [g, width] : info.widths) {
    if (!opt.groups.empty() && !opt.groups.count(g)) continue;
    at::Tensor x = s.read_rows("groups/" + g, 0, rows, at::kFloat);
    check_finite(x, cat(where, ", group '", g, "'"), "time", "variable");
    d.groups[g] = std::move(x);
  }
  for (const auto& g : opt.groups)
    MSLR_CHECK(d.groups.count(g), where, " has no group '", g, "'");
  if (opt.props)
    for (const auto& [g, n] : info.n_props) {
      if (!opt.groups.empty() && !opt.groups.count(g)) continue;
      at::Tensor p = s.read("props/" + g, at::kFloat);
      check_finite(p, cat(where, ", properties of group '", g, "'"), "variable", "property");
      d.props[g] = std::move(p);
    }
  if (s.exists("modes"))
    for (const std::string& m : s.group("modes").children()) {
      at::Tensor x = s.read("modes/" + m, at::kFloat);
      check_finite(x, cat(where, ", given modes '", m, "'"), "variable", "mode");
      d.modes[m] = std::move(x);
    }
  if (opt.true_means && info.has_true_means)
    for (const auto& [g, width] : d.groups)
      if (s.exists("truth/means/" + g))
        d.true_means[g] = s.read_rows("truth/means/" + g, 0, rows, at::kFloat);
  return d;
}

void write_data_file(const std::string& path, const std::vector<SubjectData>& subjects,
                     const std::map<std::string, std::string>& attributes) {
  write_atomically(path, nullptr, [&](const std::string& tmp) {
    h5::File f(tmp, h5::File::kCreate);
    f.set_attr("format", std::string(kFormat));
    f.set_attr("version", kVersion);
    for (const auto& [k, v] : attributes)
      f.set_attr(k, v);
    for (const auto& d : subjects) {
      d.validate();
      const std::string base = "subjects/" + d.name + "/";
      for (const auto& [g, x] : d.groups)
        f.put(base + "groups/" + g, x.to(at::kFloat));
      for (const auto& [g, p] : d.props)
        f.put(base + "props/" + g, p.to(at::kFloat));
      if (d.segments.defined()) f.put(base + "segments", d.segments.to(at::kLong));
      for (const auto& [m, x] : d.modes)
        f.put(base + "modes/" + m, x.to(at::kFloat));
      for (const auto& [g, m] : d.true_means)
        f.put(base + "truth/means/" + g, m.to(at::kFloat));
      for (const auto& [name, t] : d.truth)
        f.put(base + "truth/" + name, t.is_floating_point() ? t.to(at::kFloat) : t);
    }
    f.close();
  });
}

}  // namespace mslr
