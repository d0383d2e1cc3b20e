#include "mslr/io/checkpoint.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "mslr/core/error.h"
#include "mslr/core/fault.h"
#include "mslr/io/atomic_file.h"
#include "mslr/io/hdf5.h"
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

ParamLayout read_layout(const h5::Location& g) {
  std::istringstream names(g.attr_string("param_names")), shapes(g.attr_string("param_shapes"));
  ParamLayout layout;
  std::string name, shape;
  while (std::getline(names, name) && std::getline(shapes, shape, ';')) {
    std::vector<int64_t> dims;
    std::stringstream ss(shape);
    std::string d;
    while (std::getline(ss, d, ','))
      dims.push_back(std::stoll(d));
    layout.add(name, dims, Init::constant(0.0));
  }
  return layout;
}

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
    epoch_ = static_cast<int>(f.attr_int("epoch"));
    world_size_ = static_cast<int>(f.attr_int("world_size"));
    shared_layout_ = read_layout(f.group("shared"));
    const h5::Location subjects = f.group("subjects");
    std::vector<std::pair<int64_t, std::string>> order;
    for (const std::string& n : subjects.children())
      order.emplace_back(subjects.group(n).attr_int("index"), n);
    std::sort(order.begin(), order.end());
    for (const auto& [i, n] : order) {
      names_.push_back(n);
      subject_layouts_.push_back(read_layout(subjects.group(n)));
      fitted_.push_back(subjects.group(n).attr_int("fitted") != 0);
    }
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
  // Buffers are read as float64 (exact for float32 files too); the fitter converts to its own dtype.
  s.shared_params = f.read("shared/params", at::kDouble);
  s.shared_m = f.read("shared/adam_m", at::kDouble);
  s.shared_v = f.read("shared/adam_v", at::kDouble);
  s.shared_step = f.group("shared").attr_int("adam_step");
  // The log is read into plain vectors through raw pointers: a long fit has entries x subjects values.
  const at::Tensor fitted = f.read("log/fitted", at::kLong), epoch = f.read("log/epoch", at::kLong);
  const at::Tensor elapsed = f.read("log/elapsed", at::kDouble),
                   objective = f.read("log/objective", at::kDouble), lr = f.read("log/lr", at::kDouble),
                   nll = f.read("log/subject_nll", at::kDouble);
  s.log.fitted.assign(fitted.data_ptr<int64_t>(), fitted.data_ptr<int64_t>() + fitted.numel());
  s.log.epoch.assign(epoch.data_ptr<int64_t>(), epoch.data_ptr<int64_t>() + epoch.numel());
  s.log.elapsed.assign(elapsed.data_ptr<double>(), elapsed.data_ptr<double>() + elapsed.numel());
  s.log.objective.assign(objective.data_ptr<double>(), objective.data_ptr<double>() + objective.numel());
  s.log.lr.assign(lr.data_ptr<double>(), lr.data_ptr<double>() + lr.numel());
  const int64_t columns = nll.size(1);
  for (int64_t e = 0; e < epoch.numel(); ++e) {
    const double* row = nll.data_ptr<double>() + e * columns;
    s.log.subject_nll.emplace_back(row, row + columns);
  }
  for (int i : mine) {
    const std::string base = "subjects/" + names_.at(i) + "/";
    const h5::Location g = f.group(base);
    SubjectState ss;
    ss.index = static_cast<int>(g.attr_int("index"));
    ss.name = names_[i];
    ss.fitted = g.attr_int("fitted") != 0;
    ss.params = f.read(base + "params", at::kDouble);
    ss.adam_m = f.read(base + "adam_m", at::kDouble);
    ss.adam_v = f.read(base + "adam_v", at::kDouble);
    ss.adam_step = f.read(base + "adam_step", at::kLong).item<int64_t>();
    ss.partial_nll = f.read(base + "partial_nll", at::kDouble).item<double>();
    s.subjects.push_back(ss);
  }
  return s;
}

at::Tensor CheckpointFile::read_subject_params(int i) const {
  return impl_->file->read("subjects/" + names_.at(i) + "/params", at::kDouble);
}

at::Tensor CheckpointFile::read_shared_params() const {
  return impl_->file->read("shared/params", at::kDouble);
}

bool CheckpointFile::has_extra(int i, const std::string& path) const {
  return impl_->file->exists("subjects/" + names_.at(i) + "/" + path);
}

at::Tensor CheckpointFile::read_extra(int i, const std::string& path, at::ScalarType dtype) const {
  return impl_->file->read("subjects/" + names_.at(i) + "/" + path, dtype);
}

}  // namespace mslr
