// Thin RAII layer over the HDF5 C API, and the only place besides io/*.cpp that knows about it. Files are
// opened through MPI-IO when the world has MPI (collective open/create; every rank must then make the same
// metadata calls: create groups, datasets and attributes with the same arguments), and with the default
// driver otherwise. Dataset reads and writes are independent: each rank touches only its own subjects.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "mslr/comm/communicator.h"

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

 private:
  int64_t id_ = -1;
  int (*close_)(int64_t) = nullptr;
};

class File;

// A group or a file's root: where datasets, subgroups and attributes live.
class Location {
 public:
  bool exists(const std::string& path) const;            // a link path relative to this location
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

  // Dataset shape; throws naming the path when absent.
  std::vector<int64_t> shape(const std::string& path) const;
  // Reads a whole dataset, or rows [row0, row0 + rows) of its first dimension, converting to `dtype`
  // (float32, float64 or int64).
  at::Tensor read(const std::string& path, at::ScalarType dtype) const;
  at::Tensor read_rows(const std::string& path, int64_t row0, int64_t rows, at::ScalarType dtype) const;
  // Creates a dataset of `shape` and element type `dtype` (collective under MPI).
  void create(const std::string& path, const std::vector<int64_t>& shape, at::ScalarType dtype) const;
  // Writes a whole dataset from a host tensor (independent: only the caller's rank writes).
  void write(const std::string& path, const at::Tensor& data) const;
  // create() then write(): for files written by one process, or data every rank writes identically.
  void put(const std::string& path, const at::Tensor& data) const;

  std::string name() const;  // the HDF5 path of this location
  const std::string& file_name() const { return file_; }
  int64_t id() const { return h_.id(); }

 protected:
  Location(Handle h, std::string file) : h_(std::move(h)), file_(std::move(file)) {}
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
  // Closes the file (collective under MPI). Called by the destructor if not before.
  void close();
};

// Turns off HDF5's own error printing (mslr reports errors itself); safe to call more than once.
void quiet_errors();

}  // namespace mslr::h5
