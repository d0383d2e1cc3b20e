#include "mslr/io/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "h5.h"
#include "mslr/core/error.h"
#include "mslr/core/fault.h"
#include "mslr/io/atomic_file.h"
#include "mslr/io/data_file.h"
#include "mslr/io/paths.h"

namespace mslr {
namespace {

constexpr const char* kFormat = "mslr-checkpoint";
constexpr int64_t kVersion = 1;

// Layouts travel as three attributes: names (one per line), shapes ("3,32;32;" per parameter) and offsets.
void write_layout(const h5::Location& g, const ParamLayout& layout) {
  std::string names, shapes;
  std::vector<int64_t> offsets;
  for (const auto& e : layout.entries()) {
    names += e.name + "\n";
    for (size_t i = 0; i < e.shape.size(); ++i)
      shapes += (i ? "," : "") + std::to_string(e.shape[i]);
    shapes += ";";
    offsets.push_back(e.offset);
  }
  g.set_attr("param_names", names);
  g.set_attr("param_shapes", shapes);
  g.set_attr("param_offsets", offsets);
}

// Reads a layout back, checking every name, dimension and offset: `who` names the group in messages.
ParamLayout read_layout(const h5::Location& g, const std::string& who) {
  const std::string& file = g.file_name();
  std::istringstream names(g.attr_string("param_names")), shapes(g.attr_string("param_shapes"));
  const std::vector<int64_t> offsets = g.attr_ints("param_offsets");
  ParamLayout layout;
  std::string name, shape;
  while (std::getline(names, name)) {
    MSLR_CHECK(std::getline(shapes, shape, ';'), file, ": ", who, ": parameter '", name, "' has no shape");
    std::vector<int64_t> dims;
    std::stringstream ss(shape);
    std::string d;
    while (std::getline(ss, d, ',')) {
      char* end = nullptr;
      errno = 0;
      const long long v = std::strtoll(d.c_str(), &end, 10);
      MSLR_CHECK(!d.empty() && *end == '\0' && errno == 0 && v >= 0 && v <= (int64_t{1} << 40), file, ": ",
                 who, ": parameter '", name, "' has a bad dimension '", d, "'");
      dims.push_back(v);
    }
    MSLR_CHECK(!layout.contains(name), file, ": ", who, ": parameter '", name, "' appears twice");
    const int k = layout.add(name, dims, Init::constant(0.0));
    MSLR_CHECK(static_cast<size_t>(k) < offsets.size() && offsets[k] == layout.entries()[k].offset, file,
               ": ", who, ": the offset of parameter '", name, "' does not follow from the shapes");
  }
  MSLR_CHECK(layout.entries().size() == offsets.size() && !std::getline(shapes, shape, ';'), file, ": ", who,
             ": the parameter names, shapes and offsets do not agree in number");
  return layout;
}

// A 1-D dataset of `n` values, checked before it is read.
void expect_length(const h5::Location& f, const std::string& path, int64_t n) {
  const auto shape = f.shape(path);
  MSLR_CHECK(shape.size() == 1 && shape[0] == n, f.file_name(), ": ", f.full_path(path), " is ",
             shape_str(shape), ", expected [", n, "]");
}

// Reads a whole float64 buffer and checks that every value is finite (and, with `non_negative`, >= 0).
at::Tensor read_values(const h5::Location& f, const std::string& path, int64_t n, bool non_negative = false) {
  expect_length(f, path, n);
  at::Tensor x = f.read(path, at::kDouble);
  check_finite(x, f.file_name() + ": " + f.full_path(path), "index", nullptr);
  if (non_negative && n > 0) {
    const auto [lo, at_index] = x.min(0);
    MSLR_CHECK(lo.item<double>() >= 0, f.file_name(), ": ", f.full_path(path), " has a negative value (",
               lo.item<double>(), ") at index ", at_index.item<int64_t>());
  }
  return x;
}

// An integer attribute within [lo, hi].
int64_t attr_in(const h5::Location& g, const std::string& name, int64_t lo, int64_t hi) {
  const int64_t v = g.attr_int(name);
  MSLR_CHECK(v >= lo && v <= hi, g.file_name(), ": attribute '", name, "' of ", g.name(), " is ", v,
             ", outside [", lo, ", ", hi, "]");
  return v;
}

double finite_attr(const h5::Location& g, const std::string& name) {
  const double v = g.attr_double(name);
  MSLR_CHECK(std::isfinite(v) && v >= 0, g.file_name(), ": attribute '", name, "' of ", g.name(), " is ", v,
             ", not a finite number >= 0");
  return v;
}

constexpr int64_t kMostEpochs = 1000000000;

const std::vector<const char*> kBuffers = {"params", "adam_m", "adam_v"};

}  // namespace

void point_link(const std::string& link, const std::string& target) {
  const std::string tmp = link + ".new";
  ::unlink(tmp.c_str());
  MSLR_CHECK(::symlink(target.c_str(), tmp.c_str()) == 0, tmp,
             ": cannot create link: ", std::strerror(errno));
  fault_point("latest", 0);  // only rank 0 switches the link
  MSLR_CHECK(::rename(tmp.c_str(), link.c_str()) == 0, link, ": cannot update link: ", std::strerror(errno));
  fsync_path(dir_of(link), true);
}

void prune_checkpoints(const std::string& dir, int keep) {
  if (keep <= 0) return;
  std::vector<std::string> files;
  if (DIR* d = ::opendir(dir.c_str())) {
    while (dirent* e = ::readdir(d)) {
      const std::string n = e->d_name;
      if (n.rfind("epoch-", 0) == 0 && n.size() > 3 && n.compare(n.size() - 3, 3, ".h5") == 0)
        files.push_back(n);
    }
    ::closedir(d);
  }
  std::sort(files.begin(), files.end());  // zero-padded epochs: name order is age order
  char target[4096];
  const ssize_t n = ::readlink((dir + "/latest").c_str(), target, sizeof target - 1);
  const std::string latest = n > 0 ? std::string(target, static_cast<size_t>(n)) : "";
  for (size_t i = 0; i + static_cast<size_t>(keep) < files.size(); ++i)
    if (files[i] != latest) ::unlink((dir + "/" + files[i]).c_str());
}

std::string resolve_checkpoint(const std::string& path) {
  if (is_file(path)) return path;
  struct stat st;
  MSLR_CHECK(::stat(path.c_str(), &st) != 0 || S_ISDIR(st.st_mode), path,
             ": is not a regular file (a FIFO or a device?), not a checkpoint");
  MSLR_CHECK(is_dir(path), path, ": no such checkpoint file or run folder");
  for (const std::string& link : {path + "/checkpoints/latest", path + "/latest"}) {
    if (is_file(link)) {  // follows the link
      char target[4096];
      const ssize_t n = ::readlink(link.c_str(), target, sizeof target - 1);
      return n > 0 ? dir_of(link) + "/" + std::string(target, static_cast<size_t>(n)) : link;
    }
  }
  fail(path, ": no complete checkpoint here (looked for ", path, "/checkpoints/latest and ", path,
       "/latest)");
}

std::string resolve_checkpoint_or_file(const std::string& path) {
  return is_dir(path) ? resolve_checkpoint(path) : path;
}

void write_checkpoint(const std::string& path, const Communicator& comm, const CheckpointHeader& header,
                      const FitState& state, const std::map<int, std::map<std::string, at::Tensor>>& extras) {
  const at::ScalarType dtype = state.shared_params.scalar_type();
  write_atomically(path, &comm, [&](const std::string& tmp) {
    std::unique_ptr<h5::File> f;
    run_collectively(comm, [&] { f = std::make_unique<h5::File>(tmp, h5::File::kCreate, &comm); });
    // Metadata: the same calls with the same values on every rank.
    run_collectively(comm, [&] {
      f->set_attr("format", std::string(kFormat));
      f->set_attr("version", kVersion);
      f->set_attr("epoch", static_cast<int64_t>(state.epoch));
      f->set_attr("batch", static_cast<int64_t>(state.batch));
      f->set_attr("world_size", static_cast<int64_t>(comm.size()));
      f->set_attr("adam_lr", state.adam_lr);
      f->set_attr("elapsed", state.elapsed);
      f->set_attr("config", header.config);
      f->set_attr("model", header.model);
      const h5::Location shared = f->create_group("shared");
      for (const char* b : kBuffers)
        shared.create(b, {header.shared_layout.numel()}, dtype);
      shared.set_attr("adam_step", state.shared_step);
      write_layout(shared, header.shared_layout);
      const int64_t entries = static_cast<int64_t>(state.log.size());
      const int64_t fitted = static_cast<int64_t>(state.log.fitted.size());
      const h5::Location log = f->create_group("log");
      for (const char* name : {"elapsed", "objective", "lr"})
        log.create(name, {entries}, at::kDouble);
      log.create("epoch", {entries}, at::kLong);
      log.create("fitted", {fitted}, at::kLong);
      log.create("subject_nll", {entries, fitted}, at::kDouble);
      for (size_t i = 0; i < header.subjects.size(); ++i) {
        const h5::Location s = f->create_group("subjects/" + header.subjects[i].name);
        const bool is_fitted =
            std::count(state.log.fitted.begin(), state.log.fitted.end(), static_cast<int>(i)) > 0;
        s.set_attr("index", static_cast<int64_t>(i));
        s.set_attr("fitted", static_cast<int64_t>(is_fitted));
        write_layout(s, header.subject_layouts[i]);
        for (const char* b : kBuffers)
          s.create(b, {header.subject_layouts[i].numel()}, dtype);
        s.create("adam_step", {}, at::kLong);
        s.create("partial_nll", {}, at::kDouble);
        for (const auto& x : header.extras[i])
          s.create(x.path, x.shape, x.dtype);
      }
    });
    // Data: rank 0 the shared parameters and the log; every rank its own subjects.
    run_collectively(comm, [&] {
      fault_point("checkpoint", comm.rank());
      if (comm.is_root()) {
        f->write("shared/params", state.shared_params);
        f->write("shared/adam_m", state.shared_m);
        f->write("shared/adam_v", state.shared_v);
        const auto& log = state.log;
        f->write("log/epoch",
                 at::tensor(std::vector<int64_t>(log.epoch.begin(), log.epoch.end()), at::kLong));
        f->write("log/elapsed", at::tensor(log.elapsed, at::kDouble));
        f->write("log/objective", at::tensor(log.objective, at::kDouble));
        f->write("log/lr", at::tensor(log.lr, at::kDouble));
        f->write("log/fitted",
                 at::tensor(std::vector<int64_t>(log.fitted.begin(), log.fitted.end()), at::kLong));
        std::vector<double> nll;
        for (const auto& row : log.subject_nll)
          nll.insert(nll.end(), row.begin(), row.end());
        if (!nll.empty())
          f->write("log/subject_nll",
                   at::tensor(nll, at::kDouble).view({static_cast<int64_t>(log.size()), -1}));
      }
      for (const auto& s : state.subjects) {
        const std::string base = "subjects/" + header.subjects.at(s.index).name + "/";
        f->write(base + "params", s.params);
        f->write(base + "adam_m", s.adam_m);
        f->write(base + "adam_v", s.adam_v);
        f->write(base + "adam_step", at::scalar_tensor(s.adam_step, at::kLong));
        f->write(base + "partial_nll", at::scalar_tensor(s.partial_nll, at::kDouble));
        if (auto it = extras.find(s.index); it != extras.end())
          for (const auto& [p, t] : it->second)
            f->write(base + p, t);  // HDF5 converts to the file's type
      }
    });
    // The completion mark last, then close; write_atomically's rename then makes it visible.
    run_collectively(comm, [&] {
      f->set_attr("complete", int64_t{1});
      f->close();
    });
  });
}

struct CheckpointFile::Impl {
  std::unique_ptr<h5::File> file;
};

CheckpointFile::CheckpointFile(const std::string& path, const Communicator& comm)
    : impl_(std::make_unique<Impl>()) {
  run_collectively(comm, [&] {
    path_ = resolve_checkpoint(path);
    impl_->file = std::make_unique<h5::File>(path_, h5::File::kRead, &comm);
    const h5::File& f = *impl_->file;
    MSLR_CHECK(f.has_attr("format") && f.attr_string("format") == kFormat, path_,
               ": not an mslr checkpoint (format '", f.has_attr("format") ? f.attr_string("format") : "",
               "')");
    const int64_t version = f.attr_int("version");
    MSLR_CHECK(version == kVersion, path_, ": checkpoint version ", version,
               " is not supported (this mslr reads ", kVersion, ")");
    MSLR_CHECK(f.has_attr("complete") && f.attr_int("complete") == 1, path_, ": checkpoint is incomplete");
    config_ = f.attr_string("config");
    model_ = f.attr_string("model");
    epoch_ = static_cast<int>(attr_in(f, "epoch", 0, kMostEpochs));
    attr_in(f, "batch", 0, kMostEpochs);
    world_size_ = static_cast<int>(attr_in(f, "world_size", 1, kMostEpochs));
    finite_attr(f, "adam_lr");
    finite_attr(f, "elapsed");
    shared_layout_ = read_layout(f.group("shared"), "the shared parameters");
    attr_in(f.group("shared"), "adam_step", 0, std::numeric_limits<int64_t>::max());
    for (const char* b : kBuffers)
      expect_length(f, std::string("shared/") + b, shared_layout_.numel());
    const h5::Location subjects = f.group("subjects");
    const std::vector<std::string> children = subjects.children();
    const int64_t n = static_cast<int64_t>(children.size());
    std::vector<std::pair<int64_t, std::string>> order;
    for (const std::string& name : children)
      order.emplace_back(attr_in(subjects.group(name), "index", 0, n - 1), name);
    std::sort(order.begin(), order.end());
    for (size_t i = 0; i < order.size(); ++i) {
      const auto& [index, name] = order[i];
      MSLR_CHECK(index == static_cast<int64_t>(i), path_, ": subjects '", order[i > 0 ? i - 1 : 0].second,
                 "' and '", name, "' have the same index ", index);
      const h5::Location g = subjects.group(name);
      const std::string who = cat("subject '", name, "'");
      names_.push_back(name);
      subject_layouts_.push_back(read_layout(g, who));
      fitted_.push_back(attr_in(g, "fitted", 0, 1) != 0);
      for (const char* b : kBuffers)
        expect_length(g, b, subject_layouts_.back().numel());
      for (const char* scalar : {"adam_step", "partial_nll"})
        MSLR_CHECK(g.shape(scalar).empty(), path_, ": ", g.full_path(scalar), " must be a single value");
    }
    // The log: E entries of F fitted subjects, the subjects' own indices, epochs in order up to the position.
    const auto epoch_shape = f.shape("log/epoch");
    const int64_t entries = epoch_shape.size() == 1 ? epoch_shape[0] : -1;
    MSLR_CHECK(entries >= 0 && entries <= epoch_, path_, ": log/epoch is ", shape_str(epoch_shape),
               ", expected one entry per epoch done (at most ", epoch_, ")");
    for (const char* name : {"log/elapsed", "log/objective", "log/lr"})
      expect_length(f, name, entries);
    const auto fitted_shape = f.shape("log/fitted");
    MSLR_CHECK(fitted_shape.size() == 1 && fitted_shape[0] <= n, path_, ": log/fitted is ",
               shape_str(fitted_shape), ", expected at most [", n, "] subject indices");
    const auto nll_shape = f.shape("log/subject_nll");
    MSLR_CHECK(nll_shape == std::vector<int64_t>({entries, fitted_shape[0]}), path_, ": log/subject_nll is ",
               shape_str(nll_shape), ", expected [", entries, ", ", fitted_shape[0],
               "] (entries x fitted subjects)");
  });
}

CheckpointFile::~CheckpointFile() = default;

int CheckpointFile::index_of(const std::string& subject) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == subject) return static_cast<int>(i);
  return -1;
}

void CheckpointFile::check_model(
    const std::string& model, const ParamLayout& shared,
    const std::vector<std::pair<std::string, const ParamLayout*>>& subjects) const {
  if (model != model_) {
    std::istringstream a(model_), b(model);
    std::string la, lb;
    while (true) {
      const bool ga = static_cast<bool>(std::getline(a, la)), gb = static_cast<bool>(std::getline(b, lb));
      if (!ga && !gb) break;
      if (!ga) la = "(nothing)";
      if (!gb) lb = "(nothing)";
      MSLR_CHECK(la == lb, path_, ": the checkpoint was written for a different model: '", la, "' there, '",
                 lb, "' here");
    }
  }
  const std::string d = shared_layout_.difference(shared);
  MSLR_CHECK(d.empty(), path_, ": the checkpoint's shared parameters differ from this model's: ", d);
  for (const auto& [name, layout] : subjects) {
    const int i = index_of(name);
    MSLR_CHECK(i >= 0, path_, ": the checkpoint has no subject '", name, "'");
    const std::string ds = subject_layouts_[i].difference(*layout);
    MSLR_CHECK(ds.empty(), path_, ": subject '", name, "' differs from this model: ", ds);
  }
}

FitState CheckpointFile::read_state(const std::vector<int>& mine) const {
  const h5::File& f = *impl_->file;
  FitState s;
  s.epoch = static_cast<int>(f.attr_int("epoch"));
  s.batch = static_cast<int>(f.attr_int("batch"));
  s.adam_lr = f.attr_double("adam_lr");
  s.elapsed = f.attr_double("elapsed");
  // Buffers are read as float64 (exact for float32 files too); the fitter converts to its own dtype. Every
  // length was checked when the file was opened; every value is checked here.
  const int64_t P = shared_layout_.numel();
  s.shared_params = read_values(f, "shared/params", P);
  s.shared_m = read_values(f, "shared/adam_m", P);
  s.shared_v = read_values(f, "shared/adam_v", P, true);
  s.shared_step = f.group("shared").attr_int("adam_step");
  // The log is read into plain vectors through raw pointers: a long fit has entries x subjects values.
  const int64_t entries = f.info("log/epoch").shape[0];
  const at::Tensor fitted = f.read("log/fitted", at::kLong), epoch = f.read("log/epoch", at::kLong);
  const at::Tensor elapsed = read_values(f, "log/elapsed", entries),
                   objective = read_values(f, "log/objective", entries),
                   lr = read_values(f, "log/lr", entries), nll = f.read("log/subject_nll", at::kDouble);
  check_finite(nll, path_ + ": /log/subject_nll", "entry", "column");
  const int64_t* fi = fitted.data_ptr<int64_t>();
  for (int64_t k = 0; k < fitted.numel(); ++k)
    MSLR_CHECK(fi[k] >= 0 && fi[k] < static_cast<int64_t>(names_.size()) && (k == 0 || fi[k] > fi[k - 1]),
               path_, ": /log/fitted[", k, "] = ", fi[k], " is not a subject index in increasing order");
  const int64_t* ep = epoch.data_ptr<int64_t>();
  for (int64_t e = 0; e < entries; ++e)
    MSLR_CHECK(ep[e] >= 0 && ep[e] < s.epoch && (e == 0 || ep[e] > ep[e - 1]), path_, ": /log/epoch[", e,
               "] = ", ep[e], " is not an epoch before ", s.epoch, " in increasing order");
  s.log.fitted.assign(fi, fi + fitted.numel());
  s.log.epoch.assign(ep, ep + entries);
  s.log.elapsed.assign(elapsed.data_ptr<double>(), elapsed.data_ptr<double>() + entries);
  s.log.objective.assign(objective.data_ptr<double>(), objective.data_ptr<double>() + entries);
  s.log.lr.assign(lr.data_ptr<double>(), lr.data_ptr<double>() + entries);
  const int64_t columns = fitted.numel();
  for (int64_t e = 0; e < entries; ++e) {
    const double* row = nll.data_ptr<double>() + e * columns;
    s.log.subject_nll.emplace_back(row, row + columns);
  }
  for (int i : mine) {
    const std::string base = "subjects/" + names_.at(i) + "/";
    const h5::Location g = f.group(base);
    const int64_t n = subject_layouts_.at(i).numel();
    SubjectState ss;
    ss.index = i;
    ss.name = names_[i];
    ss.fitted = fitted_[i];
    ss.params = read_values(g, "params", n);
    ss.adam_m = read_values(g, "adam_m", n);
    ss.adam_v = read_values(g, "adam_v", n, true);
    ss.adam_step = g.read("adam_step", at::kLong).item<int64_t>();
    MSLR_CHECK(ss.adam_step >= 0, path_, ": ", g.full_path("adam_step"), " is negative");
    ss.partial_nll = g.read("partial_nll", at::kDouble).item<double>();
    MSLR_CHECK(std::isfinite(ss.partial_nll), path_, ": ", g.full_path("partial_nll"), " is not finite");
    s.subjects.push_back(ss);
  }
  return s;
}

at::Tensor CheckpointFile::read_subject_params(int i) const {
  return read_values(impl_->file->group("subjects/" + names_.at(i)), "params",
                     subject_layouts_.at(i).numel());
}

at::Tensor CheckpointFile::read_shared_params() const {
  return read_values(*impl_->file, "shared/params", shared_layout_.numel());
}

namespace {

// A subject's copied split (see the layout in checkpoint.h), checked against the copied data's n_time.
void read_split_copy(const h5::Location& subject, int64_t n_time, const std::string& path, bool* has_split,
                     TimeRanges* train, TimeRanges* test) {
  if (!subject.exists("split")) return;
  const h5::ObjectInfo info = subject.info("split");
  MSLR_CHECK(info.kind == h5::ObjectInfo::kDataset && info.shape.size() == 2 && info.shape[1] == 2 &&
                 info.shape[0] >= 1,
             path, ": ", subject.full_path("split"), " is not a [1 + k, 2] dataset");
  const at::Tensor v = subject.read("split", at::kLong).contiguous();
  const int64_t* p = v.data_ptr<int64_t>();
  MSLR_CHECK(p[0] >= 0 && p[1] >= 0 && 1 + p[0] + p[1] == info.shape[0] && n_time >= 0, path, ": ",
             subject.full_path("split"), " holds ", p[0], " + ", p[1], " ranges in ", info.shape[0] - 1,
             " rows, or the subject's data was not copied");
  *has_split = true;
  for (int64_t r = 1; r < info.shape[0]; ++r) {
    TimeRanges& part = r <= p[0] ? *train : *test;
    const TimeRange range{p[2 * r], p[2 * r + 1]};
    MSLR_CHECK(range.begin >= end_of(part) && range.begin < range.end && range.end <= n_time, path, ": ",
               subject.full_path("split"), ": range [", range.begin, ", ", range.end,
               ") is empty, out of order or beyond the ", n_time, " time points");
    part.push_back(range);
  }
}

}  // namespace

SubjectExtras CheckpointFile::read_extras(int i) const {
  const h5::Location subject = impl_->file->group("subjects/" + names_.at(i));
  SubjectExtras x;
  // Every dataset of a folder of extras: 2-D numbers, finite (the segments aside, checked below).
  auto read_folder = [&](const std::string& folder, std::map<std::string, at::Tensor>& into) {
    if (!subject.exists(folder)) return;
    const h5::Location g = subject.group(folder);
    for (const auto& name : g.children()) {
      const h5::ObjectInfo info = g.info(name);
      MSLR_CHECK(info.kind == h5::ObjectInfo::kDataset && info.shape.size() == 2, path_, ": ",
                 g.full_path(name), " is ", info.kind_name(), " of ", info.shape.size(),
                 " dimensions, not a 2-D dataset");
      at::Tensor t = g.read(name, at::kFloat);
      MSLR_CHECK(at::isfinite(t).all().item<bool>(), path_, ": ", g.full_path(name),
                 " holds a non-finite value");
      into[name] = t;
    }
  };
  read_folder("modes", x.modes);
  read_folder("props", x.props);
  read_folder("groups", x.groups);
  if (subject.exists("segments")) {
    const h5::ObjectInfo info = subject.info("segments");
    MSLR_CHECK(info.kind == h5::ObjectInfo::kDataset && info.shape.size() == 2 && info.shape[1] == 2, path_,
               ": ", subject.full_path("segments"), " is not a [k, 2] dataset");
    x.segments = subject.read("segments", at::kLong);
  }
  int64_t n_time = -1;
  for (const auto& [g, v] : x.groups) {
    MSLR_CHECK(n_time < 0 || v.size(0) == n_time, path_, ": subject '", names_.at(i), "': copied group '", g,
               "' has ", v.size(0), " time points, another ", n_time);
    n_time = v.size(0);
  }
  if (x.segments.defined() && n_time >= 0) validate_segments(x.segments, n_time, path_ + ": " + names_.at(i));
  read_split_copy(subject, n_time, path_, &x.has_split, &x.train_ranges, &x.test_ranges);
  return x;
}

bool CheckpointFile::has_data_copy(int i) const {
  return impl_->file->exists("subjects/" + names_.at(i) + "/groups");
}

SubjectInfo CheckpointFile::describe_copy(int i) const {
  const h5::Location subject = impl_->file->group("subjects/" + names_.at(i));
  SubjectInfo info;
  info.name = names_.at(i);
  MSLR_CHECK(subject.exists("groups"), path_, ": subject '", info.name,
             "': the checkpoint holds no copy of its data");
  // Shapes only: the data itself is read by the rank that predicts the subject (read_extras).
  auto shapes = [&](const std::string& folder, std::map<std::string, int64_t>& into, bool rows_are_time) {
    if (!subject.exists(folder)) return;
    const h5::Location g = subject.group(folder);
    for (const auto& name : g.children()) {
      const h5::ObjectInfo x = g.info(name);
      MSLR_CHECK(
          x.kind == h5::ObjectInfo::kDataset && x.shape.size() == 2 && x.shape[0] > 0 && x.shape[1] > 0,
          path_, ": ", g.full_path(name), " is not a non-empty 2-D dataset");
      into[name] = x.shape[1];
      if (!rows_are_time) continue;
      MSLR_CHECK(info.n_time == 0 || info.n_time == x.shape[0], path_, ": subject '", info.name,
                 "': copied groups differ in length");
      info.n_time = x.shape[0];
    }
  };
  shapes("groups", info.widths, true);
  shapes("props", info.n_props, false);
  if (subject.exists("segments")) {
    info.segments = subject.read("segments", at::kLong);
    validate_segments(info.segments, info.n_time, path_ + ": " + info.name);
  }
  read_split_copy(subject, info.n_time, path_, &info.has_split, &info.train_ranges, &info.test_ranges);
  return info;
}

SubjectData SubjectExtras::data(const std::string& name) const {
  SubjectData d;
  d.name = name;
  d.groups = groups;
  d.props = props;
  d.modes = modes;  // the given ones among them are what set_given looks for
  d.segments = segments;
  return d;
}

std::vector<ExtraDataset> subject_extras_layout(const SubjectModel& model, const SubjectInfo& info,
                                                const ExtrasRequest& request, at::ScalarType dtype) {
  std::vector<ExtraDataset> x;
  for (const ModeSlot& slot : model.mode_slots())
    if (slot.predictor || slot.given) x.push_back({"modes/" + slot.name, {slot.rows, slot.cols}, dtype});
  const std::vector<std::string> groups = model.spec().groups();
  if (request.props)
    for (const auto& g : groups)
      if (info.n_props.count(g))
        x.push_back({"props/" + g, {info.widths.at(g), info.n_props.at(g)}, at::kFloat});
  if (request.data) {
    for (const auto& g : groups)
      x.push_back({"groups/" + g, {info.n_time, info.widths.at(g)}, at::kFloat});
    if (info.segments.defined()) x.push_back({"segments", {info.segments.size(0), 2}, at::kLong});
    if (info.has_split)
      x.push_back({"split",
                   {1 + static_cast<int64_t>(info.train_ranges.size() + info.test_ranges.size()), 2},
                   at::kLong});
  }
  return x;
}

std::map<std::string, at::Tensor> subject_extras(const std::map<std::string, at::Tensor>& modes,
                                                 const SubjectData& held, const SubjectInfo& info,
                                                 const ExtrasRequest& request) {
  std::map<std::string, at::Tensor> x;
  for (const auto& [name, m] : modes)
    x["modes/" + name] = m;
  if (request.props)
    for (const auto& [g, p] : held.props)
      x["props/" + g] = p;
  if (request.data) {
    for (const auto& [g, v] : held.groups)
      x["groups/" + g] = v;
    if (held.segments.defined()) x["segments"] = held.segments;
    if (info.has_split) {
      std::vector<int64_t> v = {static_cast<int64_t>(info.train_ranges.size()),
                                static_cast<int64_t>(info.test_ranges.size())};
      for (const auto* part : {&info.train_ranges, &info.test_ranges})
        for (const auto& r : *part) {
          v.push_back(r.begin);
          v.push_back(r.end);
        }
      x["split"] = at::tensor(v, at::kLong).view({-1, 2});
    }
  }
  return x;
}

}  // namespace mslr
