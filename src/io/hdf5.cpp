#include "mslr/io/hdf5.h"

#include <hdf5.h>
#include <sys/stat.h>

#include <cstring>

#include "mslr/core/error.h"

namespace mslr::h5 {
namespace {

// The innermost message of HDF5's error stack, e.g. "unable to open file", for our own error lines.
herr_t take_message(unsigned n, const H5E_error2_t* e, void* out) {
  auto* s = static_cast<std::string*>(out);
  if (n == 0 && e->desc) *s = e->desc;
  return 0;
}

std::string hdf5_reason() {
  std::string s;
  H5Ewalk2(H5E_DEFAULT, H5E_WALK_DOWNWARD, take_message, &s);
  H5Eclear2(H5E_DEFAULT);
  return s.empty() ? "HDF5 error" : s;
}

#define MSLR_H5(expr, ...)                                                              \
  [&] {                                                                                 \
    const auto mslr_rv_ = (expr);                                                       \
    if (mslr_rv_ < 0) ::mslr::fail(file_, ": ", __VA_ARGS__, " (", hdf5_reason(), ")"); \
    return mslr_rv_;                                                                    \
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
void Handle::close() {
  if (id_ >= 0 && close_) close_(id_);
  id_ = -1;
}

bool Location::exists(const std::string& path) const {
  // Check each link of the path so that a missing parent is not an error.
  std::string partial;
  size_t start = 0;
  while (start <= path.size()) {
    const size_t slash = path.find('/', start);
    partial = path.substr(0, slash);
    if (!partial.empty() && H5Lexists(h_.id(), partial.c_str(), H5P_DEFAULT) <= 0) return false;
    if (slash == std::string::npos) break;
    start = slash + 1;
  }
  return true;
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
  write_attr(*this, file_, n, H5T_NATIVE_INT64, H5T_STD_I64LE, {static_cast<hsize_t>(value.size())},
             value.data());
}

std::vector<int64_t> Location::shape(const std::string& path) const {
  MSLR_CHECK(exists(path), file_, ": no dataset '", path, "' in ", name());
  Handle d(MSLR_H5(H5Dopen2(h_.id(), path.c_str(), H5P_DEFAULT), "cannot open dataset '", path, "'"),
           close_dataset);
  Handle space(H5Dget_space(d.id()), close_space);
  const int rank = H5Sget_simple_extent_ndims(space.id());
  std::vector<hsize_t> dims(static_cast<size_t>(std::max(rank, 0)));
  H5Sget_simple_extent_dims(space.id(), dims.data(), nullptr);
  return std::vector<int64_t>(dims.begin(), dims.end());
}

at::Tensor Location::read(const std::string& path, at::ScalarType dtype) const {
  const auto dims = shape(path);
  return read_rows(path, 0, dims.empty() ? 1 : dims[0], dtype);
}

at::Tensor Location::read_rows(const std::string& path, int64_t row0, int64_t rows,
                               at::ScalarType dtype) const {
  const auto dims = shape(path);
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
  at::Tensor out = at::empty(out_shape, dtype);
  if (out.numel() == 0) return out;
  Handle file_space(H5Dget_space(d.id()), close_space);
  std::vector<hsize_t> start(dims.size(), 0), count(dims.begin(), dims.end());
  start[0] = static_cast<hsize_t>(row0);
  count[0] = static_cast<hsize_t>(rows);
  H5Sselect_hyperslab(file_space.id(), H5S_SELECT_SET, start.data(), nullptr, count.data(), nullptr);
  Handle mem_space(H5Screate_simple(static_cast<int>(count.size()), count.data(), nullptr), close_space);
  MSLR_H5(H5Dread(d.id(), native(dtype), mem_space.id(), file_space.id(), H5P_DEFAULT, out.data_ptr()),
          "cannot read dataset '", path, "'");
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

File::File(const std::string& path, Mode mode, const Communicator* comm) : Location(Handle(), path) {
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

void File::close() {
  h_.close();
}

}  // namespace mslr::h5
