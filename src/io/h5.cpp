#include "h5.h"

#include <hdf5.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>

#include "mslr/core/error.h"
#include "mslr/core/system.h"
#include "mslr/io/atomic_file.h"

namespace mslr::h5 {
namespace {

// The outermost message of HDF5's error stack, e.g. "can't write data", and the system's reason when a
// deeper entry gives one ("error message = 'No space left on device'"), for our own error lines.
struct Reason {
  std::string what, system;
};

herr_t take_message(unsigned n, const H5E_error2_t* e, void* out) {
  auto* r = static_cast<Reason*>(out);
  if (!e->desc) return 0;
  if (n == 0) r->what = e->desc;
  const char* key = "error message = '";
  if (const char* m = std::strstr(e->desc, key); m && r->system.empty()) {
    m += std::strlen(key);
    const char* end = std::strchr(m, '\'');
    r->system.assign(m, end ? static_cast<size_t>(end - m) : std::strlen(m));
  }
  return 0;
}

// Why writing `file` may have failed, from the file system itself: the MPI-IO driver reports a failed write
// without the system's reason. "" when neither the disk nor the file-size limit is the cause.
std::string storage_trouble(const std::string& file) {
  struct statvfs fs;
  if (::statvfs(dir_of(file).c_str(), &fs) == 0 && static_cast<double>(fs.f_bavail) * fs.f_frsize < 1 << 20)
    return std::strerror(ENOSPC);
  struct rlimit lim;
  struct stat st;
  if (::getrlimit(RLIMIT_FSIZE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY &&
      ::stat(file.c_str(), &st) == 0 && static_cast<rlim_t>(st.st_size) + (1 << 16) >= lim.rlim_cur)
    return std::strerror(EFBIG);
  return "";
}

std::string hdf5_reason(const std::string& file = "") {
  Reason r;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, take_message, &r);
  H5Eclear2(H5E_DEFAULT);
  if (r.what.empty()) r.what = "HDF5 error";
  if (r.system.empty() && !file.empty()) r.system = storage_trouble(file);
  return r.system.empty() ? r.what : r.what + ": " + r.system;
}

// Files an exception unwound while they were open, closed by stop(): read ones, and written ones abandoned
// (see File::close).
std::vector<int64_t> g_left_open, g_abandoned;

#define MSLR_H5(expr, ...)                                                                   \
  [&] {                                                                                      \
    const auto mslr_rv_ = (expr);                                                            \
    if (mslr_rv_ < 0) ::mslr::fail(file_, ": ", __VA_ARGS__, " (", hdf5_reason(file_), ")"); \
    return mslr_rv_;                                                                         \
  }()

int close_file(int64_t id) {
  return H5Fclose(id);
}
int close_group(int64_t id) {
  return H5Gclose(id);
}
int close_dataset(int64_t id) {
  return H5Dclose(id);
}
int close_space(int64_t id) {
  return H5Sclose(id);
}
int close_plist(int64_t id) {
  return H5Pclose(id);
}
int close_attr(int64_t id) {
  return H5Aclose(id);
}
int close_type(int64_t id) {
  return H5Tclose(id);
}

hid_t native(at::ScalarType t) {
  switch (t) {
    case at::kFloat:
      return H5T_NATIVE_FLOAT;
    case at::kDouble:
      return H5T_NATIVE_DOUBLE;
    case at::kLong:
      return H5T_NATIVE_INT64;
    case at::kInt:
      return H5T_NATIVE_INT32;
    case at::kByte:
      return H5T_NATIVE_UINT8;
    default:
      fail("HDF5: unsupported element type ", t);
  }
}

Handle string_type() {
  const hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return Handle(t, close_type);
}

}  // namespace

void quiet_errors() {
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
}

Handle::Handle(int64_t id, int (*close)(int64_t)) : id_(id), close_(close) {}
Handle::Handle(Handle&& o) noexcept : id_(o.id_), close_(o.close_) {
  o.id_ = -1;
}
Handle& Handle::operator=(Handle&& o) noexcept {
  if (this != &o) {
    close();
    id_ = o.id_;
    close_ = o.close_;
    o.id_ = -1;
  }
  return *this;
}
Handle::~Handle() {
  close();
}
int64_t Handle::release() {
  const int64_t id = id_;
  id_ = -1;
  return id;
}
void Handle::close() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = -1;
}

namespace {

// The type and value size of the link `name` in the group `parent` (relative to `loc`). Found by iterating
// over the group: HDF5 1.10's H5Lget_info makes a collective metadata read under MPI-IO, which hangs when
// one rank calls it alone.
struct LinkFound {
  const char* name;
  bool found = false;
  H5L_info_t info{};
};

bool find_link(hid_t loc, const std::string& parent, const std::string& name, H5L_info_t* out) {
  LinkFound want{name.c_str()};
  H5Literate_by_name(
      loc, parent.c_str(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* n, const H5L_info_t* info, void* data) -> herr_t {
        auto* w = static_cast<LinkFound*>(data);
        if (std::strcmp(n, w->name) != 0) return 0;
        w->found = true;
        w->info = *info;
        return 1;  // stop
      },
      &want, H5P_DEFAULT);
  H5Eclear2(H5E_DEFAULT);
  *out = want.info;
  return want.found;
}

// Whether `path` (relative to `loc`) exists, checking each link so that a missing parent is not an error and
// refusing links to other files, also where a soft link's target leads through one.
bool link_exists(hid_t loc, const std::string& path, const std::string& file, const std::string& where,
                 int depth) {
  MSLR_CHECK(depth < 16, file, ": ", where, path, ": too many soft links in a row");
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    const std::string partial = path.substr(0, slash);
    const std::string name =
        path.substr(start, slash == std::string::npos ? std::string::npos : slash - start);
    if (!name.empty()) {
      if (H5Lexists(loc, partial.c_str(), H5P_DEFAULT) <= 0) return false;
      H5L_info_t li;
      const std::string parent = start == 0 ? "." : start == 1 ? "/" : path.substr(0, start - 1);
      if (!find_link(loc, parent, name, &li)) return false;
      if (li.type != H5L_TYPE_HARD) {
        std::vector<char> value(li.u.val_size + 1, '\0');
        H5Lget_val(loc, partial.c_str(), value.data(), value.size(), H5P_DEFAULT);
        if (li.type == H5L_TYPE_SOFT) {
          // An absolute target is found from the file's root, a relative one from the link's group.
          const std::string target = value.data();
          const bool absolute = !target.empty() && target[0] == '/';
          if (!link_exists(loc, absolute ? target : parent + "/" + target, file, absolute ? "" : where,
                           depth + 1))
            return false;
        } else {
          const char *target_file = "?", *target = "?";
          unsigned flags = 0;
          if (li.type == H5L_TYPE_EXTERNAL)
            H5Lunpack_elink_val(value.data(), value.size(), &flags, &target_file, &target);
          fail(file, ": ", where, partial, " is a link to another file (", target_file, ":", target,
               "); mslr reads only what is stored in the file itself");
        }
      }
    }
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
}

}  // namespace

bool Location::exists(const std::string& path) const {
  return link_exists(h_.id(), path, file_, full_path(""), 0);
}

std::string Location::full_path(const std::string& path) const {
  const std::string here = name();
  return (here == "/" ? here : here + "/") + path;
}

const char* ObjectInfo::kind_name() const {
  switch (kind) {
    case kMissing:
      return "missing";
    case kGroup:
      return "a group";
    case kDataset:
      return "a dataset";
    default:
      return "a named type or other object";
  }
}

const char* ObjectInfo::type_name() const {
  switch (type) {
    case kInteger:
      return "integers";
    case kFloat:
      return "floating-point numbers";
    case kString:
      return "strings";
    case kCompound:
      return "compound records";
    default:
      return "values of an unsupported type";
  }
}

ObjectInfo Location::info(const std::string& path) const {
  ObjectInfo info;
  if (!exists(path)) return info;
  Handle obj(MSLR_H5(H5Oopen(h_.id(), path.c_str(), H5P_DEFAULT), "cannot open '", path, "'"), H5Oclose);
  const H5I_type_t t = H5Iget_type(obj.id());
  info.kind = t == H5I_GROUP     ? ObjectInfo::kGroup
              : t == H5I_DATASET ? ObjectInfo::kDataset
                                 : ObjectInfo::kOther;
  if (info.kind != ObjectInfo::kDataset) return info;
  Handle type(H5Dget_type(obj.id()), close_type);
  switch (H5Tget_class(type.id())) {
    case H5T_INTEGER:
      info.type = ObjectInfo::kInteger;
      break;
    case H5T_FLOAT:
      info.type = ObjectInfo::kFloat;
      break;
    case H5T_STRING:
      info.type = ObjectInfo::kString;
      break;
    case H5T_COMPOUND:
      info.type = ObjectInfo::kCompound;
      break;
    default:
      info.type = ObjectInfo::kOtherType;
  }
  info.element_size = static_cast<int64_t>(H5Tget_size(type.id()));
  Handle space(H5Dget_space(obj.id()), close_space);
  const int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  info.shape.assign(dims.begin(), dims.end());
  info.stored_bytes = static_cast<int64_t>(H5Dget_storage_size(obj.id()));
  return info;
}

std::vector<std::string> Location::children() const {
  std::vector<std::string> names;
  H5Literate(
      h_.id(), H5_INDEX_NAME, H5_ITER_INC, nullptr,
      [](hid_t, const char* name, const H5L_info_t*, void* out) -> herr_t {
        static_cast<std::vector<std::string>*>(out)->push_back(name);
        return 0;
      },
      &names);
  return names;
}

std::string Location::name() const {
  char buf[1024];
  const ssize_t n = H5Iget_name(h_.id(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "/";
}

Location Location::group(const std::string& path) const {
  MSLR_CHECK(exists(path), file_, ": no group '", path, "' in ", name());
  return Location(
      Handle(MSLR_H5(H5Gopen2(h_.id(), path.c_str(), H5P_DEFAULT), "cannot open group '", path, "'"),
             close_group),
      file_);
}

Location Location::create_group(const std::string& path) const {
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), close_plist);
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  return Location(Handle(MSLR_H5(H5Gcreate2(h_.id(), path.c_str(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
                                 "cannot create group '", path, "'"),
                         close_group),
                  file_);
}

bool Location::has_attr(const std::string& n) const {
  return H5Aexists(h_.id(), n.c_str()) > 0;
}

std::string Location::attr_string(const std::string& n) const {
  MSLR_CHECK(has_attr(n), file_, ": ", name(), " has no attribute '", n, "'");
  Handle a(MSLR_H5(H5Aopen(h_.id(), n.c_str(), H5P_DEFAULT), "cannot open attribute '", n, "'"), close_attr);
  Handle ft(H5Aget_type(a.id()), close_type);
  MSLR_CHECK(H5Tget_class(ft.id()) == H5T_STRING, file_, ": attribute '", n, "' of ", name(),
             " is not a string");
  if (H5Tis_variable_str(ft.id()) > 0) {
    Handle mt = string_type();
    char* value = nullptr;
    MSLR_H5(H5Aread(a.id(), mt.id(), &value), "cannot read attribute '", n, "'");
    std::string s = value ? value : "";
    H5free_memory(value);
    return s;
  }
  const size_t size = H5Tget_size(ft.id());
  std::string s(size, '\0');
  Handle mt(H5Tcopy(H5T_C_S1), close_type);
  H5Tset_size(mt.id(), size);
  MSLR_H5(H5Aread(a.id(), mt.id(), s.data()), "cannot read attribute '", n, "'");
  return s.substr(0, std::strlen(s.c_str()));
}

std::vector<int64_t> Location::attr_ints(const std::string& n) const {
  MSLR_CHECK(has_attr(n), file_, ": ", name(), " has no attribute '", n, "'");
  Handle a(MSLR_H5(H5Aopen(h_.id(), n.c_str(), H5P_DEFAULT), "cannot open attribute '", n, "'"), close_attr);
  Handle space(H5Aget_space(a.id()), close_space);
  const hssize_t count = H5Sget_simple_extent_npoints(space.id());
  std::vector<int64_t> v(static_cast<size_t>(std::max<hssize_t>(count, 0)));
  if (!v.empty())
    MSLR_H5(H5Aread(a.id(), H5T_NATIVE_INT64, v.data()), "cannot read attribute '", n, "' as integers");
  return v;
}

int64_t Location::attr_int(const std::string& n) const {
  const auto v = attr_ints(n);
  MSLR_CHECK(v.size() == 1, file_, ": attribute '", n, "' of ", name(), " is not a single number");
  return v[0];
}

double Location::attr_double(const std::string& n) const {
  MSLR_CHECK(has_attr(n), file_, ": ", name(), " has no attribute '", n, "'");
  Handle a(MSLR_H5(H5Aopen(h_.id(), n.c_str(), H5P_DEFAULT), "cannot open attribute '", n, "'"), close_attr);
  double v = 0;
  MSLR_H5(H5Aread(a.id(), H5T_NATIVE_DOUBLE, &v), "cannot read attribute '", n, "' as a number");
  return v;
}

namespace {

void write_attr(const Location& loc, const std::string& file_, const std::string& n, hid_t mem_type,
                hid_t file_type, const std::vector<hsize_t>& dims, const void* data) {
  if (H5Aexists(loc.id(), n.c_str()) > 0) H5Adelete(loc.id(), n.c_str());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(1, dims.data(), nullptr), close_space);
  Handle a(MSLR_H5(H5Acreate2(loc.id(), n.c_str(), file_type, space.id(), H5P_DEFAULT, H5P_DEFAULT),
                   "cannot create attribute '", n, "'"),
           close_attr);
  MSLR_H5(H5Awrite(a.id(), mem_type, data), "cannot write attribute '", n, "'");
}

}  // namespace

void Location::set_attr(const std::string& n, const std::string& value) const {
  Handle t = string_type();
  const char* p = value.c_str();
  write_attr(*this, file_, n, t.id(), t.id(), {}, &p);
}

void Location::set_attr(const std::string& n, int64_t value) const {
  write_attr(*this, file_, n, H5T_NATIVE_INT64, H5T_STD_I64LE, {}, &value);
}

void Location::set_attr(const std::string& n, double value) const {
  write_attr(*this, file_, n, H5T_NATIVE_DOUBLE, H5T_IEEE_F64LE, {}, &value);
}

void Location::set_attr(const std::string& n, const std::vector<int64_t>& value) const {
  const int64_t none = 0;  // HDF5 refuses a null buffer, even for no values
  write_attr(*this, file_, n, H5T_NATIVE_INT64, H5T_STD_I64LE, {static_cast<hsize_t>(value.size())},
             value.empty() ? &none : value.data());
}

ObjectInfo Location::dataset_info(const std::string& path) const {
  ObjectInfo what = info(path);
  MSLR_CHECK(what.kind == ObjectInfo::kDataset, file_, ": ", full_path(path), " is ", what.kind_name(),
             ", not a dataset");
  return what;
}

std::vector<int64_t> Location::shape(const std::string& path) const {
  return dataset_info(path).shape;
}

at::Tensor Location::read(const std::string& path, at::ScalarType dtype) const {
  const ObjectInfo what = dataset_info(path);
  return read_dataset(path, what, 0, what.shape.empty() ? 1 : what.shape[0], dtype);
}

at::Tensor Location::read_rows(const std::string& path, int64_t row0, int64_t rows,
                               at::ScalarType dtype) const {
  return read_dataset(path, dataset_info(path), row0, rows, dtype);
}

void Location::check_allocation(const std::string& path, const std::vector<int64_t>& shape,
                                size_t element_size) const {
  // The product in double: a declared shape may overflow int64 by itself.
  double bytes = static_cast<double>(element_size);
  for (int64_t n : shape)
    bytes *= static_cast<double>(n);
  const long long available = available_memory_bytes();
  MSLR_CHECK(available < 0 || bytes <= static_cast<double>(available), file_, ": ", full_path(path),
             " would need ", human_bytes(bytes), " of memory to read, more than the ", human_bytes(available),
             " this node has available");
}

at::Tensor Location::read_dataset(const std::string& path, const ObjectInfo& what, int64_t row0, int64_t rows,
                                  at::ScalarType dtype) const {
  MSLR_CHECK(what.type == ObjectInfo::kInteger || what.type == ObjectInfo::kFloat, file_, ": ",
             full_path(path), " holds ", what.type_name(), ", not numbers");
  MSLR_CHECK(what.type == ObjectInfo::kInteger || !at::isIntegralType(dtype, false), file_, ": ",
             full_path(path), " holds floating-point numbers where integers are expected");
  const auto& dims = what.shape;
  Handle d(MSLR_H5(H5Dopen2(h_.id(), path.c_str(), H5P_DEFAULT), "cannot open dataset '", path, "'"),
           close_dataset);
  if (dims.empty()) {  // scalar
    at::Tensor out = at::empty({}, dtype);
    MSLR_H5(H5Dread(d.id(), native(dtype), H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()), "cannot read '",
            path, "'");
    return out;
  }
  MSLR_CHECK(row0 >= 0 && rows >= 0 && row0 + rows <= dims[0], file_, ": rows [", row0, ", ", row0 + rows,
             ") are outside dataset '", path, "' of ", dims[0], " rows");
  std::vector<int64_t> out_shape = dims;
  out_shape[0] = rows;
  check_allocation(path, out_shape, at::elementSize(dtype));
  at::Tensor out = at::empty(out_shape, dtype);
  if (out.numel() == 0) return out;
  Handle file_space(H5Dget_space(d.id()), close_space);
  std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
  start[0] = static_cast<hsize_t>(row0);
  count[0] = static_cast<hsize_t>(rows);
  H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Handle mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), close_space);
  // A value that does not fit the type asked for (1e39 read as float32) stops the read rather than
  // becoming infinity or a clipped integer.
  Handle dxpl(H5Pcreate(H5P_DATASET_XFER), close_plist);
  bool out_of_range = false;
  H5Pset_type_conv_cb(
      dxpl.id(),
      [](H5T_conv_except_t e, hid_t, hid_t, void*, void*, void* flag) {
        if (e != H5T_CONV_EXCEPT_RANGE_HI && e != H5T_CONV_EXCEPT_RANGE_LOW) return H5T_CONV_UNHANDLED;
        *static_cast<bool*>(flag) = true;
        return H5T_CONV_ABORT;
      },
      &out_of_range);
  const herr_t rc =
      H5Dread(d.id(), native(dtype), mem_space.id(), file_space.id(), dxpl.id(), out.data_ptr());
  MSLR_CHECK(!out_of_range, file_, ": ", full_path(path), " holds a value beyond the range of ",
             dtype == at::kFloat    ? "float32"
             : dtype == at::kDouble ? "float64"
                                    : "int64");
  MSLR_H5(rc, "cannot read dataset '", path, "'");
  return out;
}

void Location::create(const std::string& path, const std::vector<int64_t>& shape,
                      at::ScalarType dtype) const {
  std::vector<hsize_t> dims(shape.begin(), shape.end());
  Handle space(dims.empty() ? H5Screate(H5S_SCALAR)
                            : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
               close_space);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), close_plist);
  H5Pset_create_intermediate_group(lcpl.id(), 1);
  const hid_t file_type = dtype == at::kFloat    ? H5T_IEEE_F32LE
                          : dtype == at::kDouble ? H5T_IEEE_F64LE
                          : dtype == at::kLong   ? H5T_STD_I64LE
                          : dtype == at::kInt    ? H5T_STD_I32LE
                                                 : H5T_STD_U8LE;
  Handle d(
      MSLR_H5(H5Dcreate2(h_.id(), path.c_str(), file_type, space.id(), lcpl.id(), H5P_DEFAULT, H5P_DEFAULT),
              "cannot create dataset '", path, "'"),
      close_dataset);
}

void Location::write(const std::string& path, const at::Tensor& data_in) const {
  const at::Tensor data = data_in.detach().cpu().contiguous();
  if (data.numel() == 0) return;
  Handle d(MSLR_H5(H5Dopen2(h_.id(), path.c_str(), H5P_DEFAULT), "cannot open dataset '", path, "'"),
           close_dataset);
  MSLR_H5(H5Dwrite(d.id(), native(data.scalar_type()), H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data_ptr()),
          "cannot write dataset '", path, "'");
}

void Location::put(const std::string& path, const at::Tensor& data) const {
  create(path, std::vector<int64_t>(data.sizes().begin(), data.sizes().end()), data.scalar_type());
  write(path, data);
}

File::File(const std::string& path, Mode mode, const Communicator* comm)
    : Location(Handle(), path),
      comm_(comm),
      writing_(mode == kCreate),
      exceptions_(std::uncaught_exceptions()) {
  quiet_errors();
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), close_plist);
  if (comm && comm->mpi_handle())
    H5Pset_fapl_mpio(fapl.id(), *static_cast<const MPI_Comm*>(comm->mpi_handle()), MPI_INFO_NULL);
  else
    MSLR_CHECK(!comm || comm->size() == 1, path,
               ": a world of several ranks without MPI cannot share a file");
  if (mode == kRead) {
    struct stat st;
    MSLR_CHECK(::stat(path.c_str(), &st) == 0, path, ": no such file");
    MSLR_CHECK(!S_ISDIR(st.st_mode), path, ": is a directory, not an HDF5 file");
    // Opening a FIFO or a device to look for HDF5's signature could wait forever.
    MSLR_CHECK(S_ISREG(st.st_mode), path, ": is not a regular file (a FIFO or a device?), not an HDF5 file");
    MSLR_CHECK(H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file");
    const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDONLY, fapl.id());
    MSLR_CHECK(id >= 0, path, ": cannot open (", hdf5_reason(), ")");
    h_ = Handle(id, close_file);
  } else {
    const hid_t id = H5Fcreate(path.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.id());
    MSLR_CHECK(id >= 0, path, ": cannot create the file (does its directory exist and is it writable?)");
    h_ = Handle(id, close_file);
  }
}

File::~File() {
  if (!h_.valid()) return;
  if (std::uncaught_exceptions() > exceptions_) {
    // Unwinding: no collective close here, where it could wait for a rank that is not failing; stop()
    // closes what is left once every rank is past the failure (or MPI_Abort ends them all first).
    (writing_ ? g_abandoned : g_left_open).push_back(h_.release());
    return;
  }
  try {
    close();
  } catch (const std::exception&) {
    // close() has abandoned the file; a destructor cannot report it
  }
}

void File::close() {
  if (!h_.valid()) return;
  if (writing_) {
    auto flush = [&] { MSLR_H5(H5Fflush(h_.id(), H5F_SCOPE_LOCAL), "cannot write the file"); };
    try {
      if (comm_ && comm_->size() > 1)
        run_collectively(*comm_, flush);  // every rank abandons it, or none
      else
        flush();
    } catch (...) {
      g_abandoned.push_back(h_.release());
      throw;
    }
  }
  const int64_t id = h_.release();
  if (H5Fclose(id) < 0) {
    g_abandoned.push_back(-1);  // HDF5 holds a file it failed to close: it must not try again at the end
    fail(file_, ": cannot close the file (", hdf5_reason(), ")");
  }
}

void start() {
  H5dont_atexit();
  H5open();
  quiet_errors();
}

void stop() {
  for (int64_t id : g_left_open)
    H5Fclose(id);
  // An abandoned file: its descriptor closed (MPI_File_close is collective: every rank abandoned it), the
  // file itself never closed by HDF5, nor HDF5 itself.
  for (int64_t id : g_abandoned) {
    if (id < 0) continue;
    Handle fapl(H5Fget_access_plist(id), close_plist);
    const bool mpio = fapl.valid() && H5Pget_driver(fapl.id()) == H5FD_MPIO;
    void* handle = nullptr;
    if (H5Fget_vfd_handle(id, H5P_DEFAULT, &handle) < 0 || !handle) continue;
    if (mpio)
      MPI_File_close(static_cast<MPI_File*>(handle));
    else
      ::close(*static_cast<int*>(handle));
  }
  H5Eclear2(H5E_DEFAULT);
  if (g_abandoned.empty()) H5close();
}

}  // namespace mslr::h5
