// The MPI implementation of Communicator, and the process-wide MPI session.
#pragma once

#include <memory>

#include "mslr/comm/communicator.h"

namespace mslr {

// Initialises MPI for the life of the object (thread level FUNNELED) and finalises it on destruction.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
};

// Ends every rank of the job at once with `code` (MPI_Abort): for an error that other ranks cannot know
// about.
[[noreturn]] void abort_world(int code);

// Host tensors over MPI_COMM_WORLD (a duplicate of it, so mslr's messages never mix with others').
class MpiCommunicator : public Communicator {
 public:
  MpiCommunicator();
  ~MpiCommunicator() override;
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  int local_size() const override { return local_size_; }
  int node() const override { return node_; }
  std::string backend() const override { return "mpi"; }
  void all_reduce_sum(at::Tensor& t) const override;
  void all_reduce_max(at::Tensor& t) const override;
  void broadcast(at::Tensor& t, int root) const override;
  at::Tensor gather(const at::Tensor& t, int root) const override;
  void barrier() const override;
  const void* mpi_handle() const override;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int rank_ = 0, size_ = 1, local_rank_ = 0, local_size_ = 1, node_ = 0;
};

}  // namespace mslr
