#include "mslr/comm/mpi_communicator.h"

#include <mpi.h>

#include <climits>
#include <vector>

#include "mslr/core/error.h"

#define MSLR_MPI_CHECK(call)                                                                             \
  do {                                                                                                   \
    const int mslr_rc_ = (call);                                                                         \
    if (mslr_rc_ != MPI_SUCCESS) {                                                                       \
      char mslr_msg_[MPI_MAX_ERROR_STRING];                                                              \
      int mslr_len_ = 0;                                                                                 \
      MPI_Error_string(mslr_rc_, mslr_msg_, &mslr_len_);                                                 \
      ::mslr::fail(__FILE__, ":", __LINE__, ": ", #call, " failed: ", std::string(mslr_msg_, mslr_len_), \
                   " (is the job launched with mpirun/srun, and are all ranks alive?)");                 \
    }                                                                                                    \
  } while (0)

namespace mslr {
namespace {

MPI_Datatype mpi_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return MPI_FLOAT;
    case at::kDouble:
      return MPI_DOUBLE;
    case at::kLong:
      return MPI_INT64_T;
    case at::kInt:
      return MPI_INT32_T;
    case at::kByte:
      return MPI_UINT8_T;
    case at::kChar:
      return MPI_INT8_T;
    default:
      fail("MPI communicator: unsupported element type ", t.scalar_type());
  }
}

void check_host(const at::Tensor& t, const char* what) {
  MSLR_CHECK(t.device().is_cpu(), "MPI ", what, " needs a host tensor, got one on ", t.device());
  MSLR_CHECK(t.is_contiguous(), "MPI ", what, " needs a contiguous tensor");
}

// MPI counts are int: large buffers go in chunks.
constexpr int64_t kChunk = INT_MAX / 2;

}  // namespace

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (!initialised) {
    int provided = 0;
    MSLR_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided));
  }
}

MpiSession::~MpiSession() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

void abort_world(int code) {
  int initialised = 0;
  MPI_Initialized(&initialised);
  if (initialised) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

struct MpiCommunicator::Impl {
  MPI_Comm world = MPI_COMM_NULL;
};

MpiCommunicator::MpiCommunicator() : impl_(std::make_unique<Impl>()) {
  MSLR_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &impl_->world));
  MSLR_MPI_CHECK(MPI_Comm_rank(impl_->world, &rank_));
  MSLR_MPI_CHECK(MPI_Comm_size(impl_->world, &size_));
  MPI_Comm node;
  MSLR_MPI_CHECK(MPI_Comm_split_type(impl_->world, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node));
  MSLR_MPI_CHECK(MPI_Comm_rank(node, &local_rank_));
  MSLR_MPI_CHECK(MPI_Comm_size(node, &local_size_));
  node_ = rank_;  // the node's first rank (its local rank 0, the lowest world rank: split keyed by rank)
  MSLR_MPI_CHECK(MPI_Bcast(&node_, 1, MPI_INT, 0, node));
  MPI_Comm_free(&node);
}

MpiCommunicator::~MpiCommunicator() {
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised && impl_->world != MPI_COMM_NULL) MPI_Comm_free(&impl_->world);
}

const void* MpiCommunicator::mpi_handle() const {
  return &impl_->world;
}

namespace {

void all_reduce(at::Tensor& t, MPI_Op op, MPI_Comm comm) {
  check_host(t, "all-reduce");
  const MPI_Datatype type = mpi_type(t);
  char* p = static_cast<char*>(t.data_ptr());
  for (int64_t done = 0; done < t.numel(); done += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, t.numel() - done));
    MSLR_MPI_CHECK(MPI_Allreduce(MPI_IN_PLACE, p + done * t.element_size(), n, type, op, comm));
  }
}

}  // namespace

void MpiCommunicator::all_reduce_sum(at::Tensor& t) const {
  all_reduce(t, MPI_SUM, impl_->world);
}

void MpiCommunicator::all_reduce_max(at::Tensor& t) const {
  all_reduce(t, MPI_MAX, impl_->world);
}

void MpiCommunicator::broadcast(at::Tensor& t, int root) const {
  check_host(t, "broadcast");
  const MPI_Datatype type = mpi_type(t);
  char* p = static_cast<char*>(t.data_ptr());
  for (int64_t done = 0; done < t.numel(); done += kChunk) {
    const int n = static_cast<int>(std::min(kChunk, t.numel() - done));
    MSLR_MPI_CHECK(MPI_Bcast(p + done * t.element_size(), n, type, root, impl_->world));
  }
}

at::Tensor MpiCommunicator::gather(const at::Tensor& t_in, int root) const {
  const at::Tensor t = t_in.contiguous();
  check_host(t, "gather");
  // Row counts first, then the rows as bytes (Gatherv displacements are int: fine for logs and small tables).
  int64_t row_bytes = t.element_size();
  for (int64_t d = 1; d < t.dim(); ++d)
    row_bytes *= t.size(d);
  const int64_t rows = t.dim() == 0 ? 1 : t.size(0);
  std::vector<int64_t> all_rows(size_);
  MSLR_MPI_CHECK(MPI_Gather(&rows, 1, MPI_INT64_T, all_rows.data(), 1, MPI_INT64_T, root, impl_->world));
  std::vector<int> counts(size_), displs(size_);
  int64_t total_rows = 0;
  if (rank_ == root) {
    for (int r = 0; r < size_; ++r) {
      MSLR_CHECK((total_rows + all_rows[r]) * row_bytes < INT_MAX, "MPI gather of more than 2 GB");
      counts[r] = static_cast<int>(all_rows[r] * row_bytes);
      displs[r] = static_cast<int>(total_rows * row_bytes);
      total_rows += all_rows[r];
    }
  }
  at::Tensor out;
  if (rank_ == root) {
    std::vector<int64_t> shape(t.sizes().begin(), t.sizes().end());
    if (shape.empty()) shape = {1};
    shape[0] = total_rows;
    out = at::empty(shape, t.options());
  }
  MSLR_MPI_CHECK(MPI_Gatherv(t.data_ptr(), static_cast<int>(rows * row_bytes), MPI_BYTE,
                             rank_ == root ? out.data_ptr() : nullptr, counts.data(), displs.data(), MPI_BYTE,
                             root, impl_->world));
  return out;
}

void MpiCommunicator::barrier() const {
  MSLR_MPI_CHECK(MPI_Barrier(impl_->world));
}

}  // namespace mslr
