// The one communication interface of mslr (docs/DESIGN.md §4). Math and I/O code takes a `const
// Communicator&`; a world of size 1 is an ordinary world whose collectives return at once. Collectives take
// tensors and derive count and element type from them.
#pragma once

#include <ATen/ATen.h>

#include <functional>
#include <memory>
#include <string>

namespace mslr {

class Communicator {
 public:
  Communicator() = default;
  // A communicator owns its handles (an MPI or NCCL communicator): never copied.
  Communicator(const Communicator&) = delete;
  Communicator& operator=(const Communicator&) = delete;
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // Rank and number of ranks on this node (for numbering local GPUs).
  virtual int local_rank() const = 0;
  virtual int local_size() const = 0;
  // The same number for the ranks of one node and a different one for each node (the world rank of the
  // node's first rank), e.g. to tell apart the GPUs of different nodes.
  virtual int node() const = 0;
  virtual std::string backend() const = 0;

  // In place: every rank ends with the element-wise sum (max) over ranks. `t` must be contiguous; host
  // tensors always work, device tensors with the NCCL implementation. The result is the same on every rank,
  // bit for bit.
  virtual void all_reduce_sum(at::Tensor& t) const = 0;
  virtual void all_reduce_max(at::Tensor& t) const = 0;
  // In place: every rank ends with root's values; shapes must already agree.
  virtual void broadcast(at::Tensor& t, int root) const = 0;
  // Concatenation along dim 0 of every rank's host tensor (the row counts may differ; the other dimensions
  // and dtype must agree). Returned on `root`; an undefined tensor elsewhere.
  virtual at::Tensor gather(const at::Tensor& t, int root) const = 0;
  virtual void barrier() const = 0;

  // The MPI communicator (an MPI_Comm*) under this world, for parallel HDF5; nullptr for a world without MPI.
  virtual const void* mpi_handle() const { return nullptr; }

  bool is_root() const { return rank() == 0; }
  // Convenience on top of the collectives.
  std::string broadcast_string(const std::string& s, int root) const;
  int64_t sum(int64_t v) const;
};

// The size-1 world of a process that runs without MPI (unit tests, single-process tools).
class LocalCommunicator : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  int local_size() const override { return 1; }
  int node() const override { return 0; }
  std::string backend() const override { return "local"; }
  void all_reduce_sum(at::Tensor&) const override {}
  void all_reduce_max(at::Tensor&) const override {}
  void broadcast(at::Tensor&, int) const override {}
  at::Tensor gather(const at::Tensor& t, int) const override { return t.clone(); }
  void barrier() const override {}
};

// Fail together (STYLE 4): runs `work` on every rank; if it throws (an std::exception) on any rank, every
// rank throws, so that no rank is left waiting in a later collective. A rank that failed throws its own
// message; the others throw "rank R: <message>" with the message of the lowest failing rank R.
void run_collectively(const Communicator& comm, const std::function<void()>& work);

}  // namespace mslr
