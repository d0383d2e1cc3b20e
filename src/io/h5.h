// Thin RAII layer over the HDF5 C API, private to io/ (src/io/, not include/): nothing else knows HDF5. Files are
// opened through MPI-IO when the world has MPI (collective open/create; every rank must then make the same
// metadata calls: create groups, datasets and attributes with the same arguments), and with the default
// driver otherwise. Dataset reads and writes are independent: each rank touches only its own subjects.
//
// What a file says is not trusted: a path never leads through a link to another file (opening one under
// MPI-IO would be a collective call made by one rank), and no read allocates more than the node's memory.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mslr/comm/communicator.h"
#include "mslr/io/lifetime.h"

namespace mslr::h5 {

// An owned hid_t, closed with the right H5?close on destruction.
class Handle {
 public:
  Handle() = default;
  Handle(int64_t id, int (*close)(int64_t));
  Handle(Handle&& o) noexcept;
  Handle& operator=(Handle&& o) noexcept;
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  ~Handle();
  int64_t id() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void close();
  int64_t release();  // gives the id up without closing it

 private:
  int64_t id_ = -1;
  int (*close_)(int64_t) = nullptr;
};

class File;

// What a path names, without reading it: for checking a file's layout before trusting it.
struct ObjectInfo {
  enum Kind { kMissing, kGroup, kDataset, kOther } kind = kMissing;
  enum Type { kInteger, kFloat, kString, kCompound, kOtherType } type = kOtherType;  // datasets only
  std::vector<int64_t> shape;                                                        // datasets only
  int64_t element_size = 0;       // bytes per element in the file
  int64_t stored_bytes = 0;       // bytes the file really holds for it (less than declared when compressed
                                  // or never written)
  const char* kind_name() const;  // "a group", "a dataset", ...
  const char* type_name() const;  // "integers", "floating-point numbers", "strings", ...
};

// A group or a file's root: where datasets, subgroups and attributes live.
class Location {
 public:
  // Whether a link path relative to this location exists. Throws naming the path when it leads through a
  // link to another file.
  bool exists(const std::string& path) const;
  ObjectInfo info(const std::string& path) const;        // kind, type, shape and storage of `path`
  std::vector<std::string> children() const;             // names of the members, in name order
  Location group(const std::string& path) const;         // opens; throws naming the path when absent
  Location create_group(const std::string& path) const;  // creates (with missing parents)

  // Attributes (scalar or 1-D). Writing is collective under MPI: every rank passes the same value.
  bool has_attr(const std::string& name) const;
  std::string attr_string(const std::string& name) const;
  int64_t attr_int(const std::string& name) const;
  double attr_double(const std::string& name) const;
  std::vector<int64_t> attr_ints(const std::string& name) const;
  void set_attr(const std::string& name, const std::string& value) const;
  void set_attr(const std::string& name, int64_t value) const;
  void set_attr(const std::string& name, double value) const;
  void set_attr(const std::string& name, const std::vector<int64_t>& value) const;

  // Dataset shape; throws naming the path when it is absent or not a dataset.
  std::vector<int64_t> shape(const std::string& path) const;
  // Reads a whole dataset, or rows [row0, row0 + rows) of its first dimension, converting to `dtype`
  // (float32, float64 or int64). Throws naming the dataset, before allocating, when the values would not fit
  // in the memory available, and when integers are asked of a dataset of floating-point numbers.
  at::Tensor read(const std::string& path, at::ScalarType dtype) const;
  at::Tensor read_rows(const std::string& path, int64_t row0, int64_t rows, at::ScalarType dtype) const;
  // Creates a dataset of `shape` and element type `dtype` (collective under MPI).
  void create(const std::string& path, const std::vector<int64_t>& shape, at::ScalarType dtype) const;
  // Writes a whole dataset from a host tensor (independent: only the caller's rank writes).
  void write(const std::string& path, const at::Tensor& data) const;
  // create() then write(): for files written by one process, or data every rank writes identically.
  void put(const std::string& path, const at::Tensor& data) const;

  std::string name() const;                              // the HDF5 path of this location
  std::string full_path(const std::string& path) const;  // the HDF5 path of `path` relative to it
  const std::string& file_name() const { return file_; }
  int64_t id() const { return h_.id(); }

 protected:
  Location(Handle h, std::string file) : h_(std::move(h)), file_(std::move(file)) {}
  // info() of a dataset; throws naming the path when it is absent or something else.
  ObjectInfo dataset_info(const std::string& path) const;
  // Reads rows [row0, row0 + rows) of the dataset `what` describes (all of a scalar), with the checks of read().
  at::Tensor read_dataset(const std::string& path, const ObjectInfo& what, int64_t row0, int64_t rows,
                          at::ScalarType dtype) const;
  // Throws naming the dataset when reading `shape` elements of `element_size` bytes would take more memory
  // than the node has available.
  void check_allocation(const std::string& path, const std::vector<int64_t>& shape,
                        size_t element_size) const;
  Handle h_;
  std::string file_;
};

class File : public Location {
 public:
  enum Mode { kRead, kCreate };
  // Opens or creates `path`. With a communicator that has MPI the call is collective over it and uses
  // MPI-IO; with none (nullptr), or a world of one rank without MPI, only the calling process opens it.
  // Throws with the path and a reason (missing, not HDF5, not writable).
  File(const std::string& path, Mode mode, const Communicator* comm = nullptr);
  File(File&&) = default;
  // Closes the file, except when destroyed by an exception: then it is left to stop(), since a collective
  // close could wait for ranks that are not failing, and a file being written is abandoned (see close()).
  ~File();
  // Closes the file (collective under MPI). A file being written is flushed first; when that fails (a full
  // disk, a file-size limit) it is abandoned on every rank — its descriptor closed, HDF5 never asked to
  // close it again, since HDF5 1.10 crashes closing a file it cannot flush — and the error names the file
  // and the system's reason.
  void close();

 private:
  const Communicator* comm_ = nullptr;
  bool writing_ = false;
  int exceptions_ = 0;  // std::uncaught_exceptions() when opened
};

// Turns off HDF5's own error printing (mslr reports errors itself); safe to call more than once.
void quiet_errors();

}  // namespace mslr::h5
