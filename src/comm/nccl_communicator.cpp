#include "mslr/comm/nccl_communicator.h"

#include <cstring>
#include <exception>

#include "mslr/core/error.h"
#include "mslr/core/gpu.h"

#ifdef MSLR_HAVE_NCCL
#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#define MSLR_CUDA_CHECK(call)                                                                       \
  do {                                                                                              \
    const cudaError_t mslr_rc_ = (call);                                                            \
    if (mslr_rc_ != cudaSuccess)                                                                    \
      ::mslr::fail(__FILE__, ":", __LINE__, ": ", #call, " failed: ", cudaGetErrorString(mslr_rc_), \
                   " (check CUDA_VISIBLE_DEVICES and --gpus-per-rank)");                            \
  } while (0)

#define MSLR_NCCL_CHECK(call)                                                                       \
  do {                                                                                              \
    const ncclResult_t mslr_rc_ = (call);                                                           \
    if (mslr_rc_ != ncclSuccess)                                                                    \
      ::mslr::fail(__FILE__, ":", __LINE__, ": ", #call, " failed: ", ncclGetErrorString(mslr_rc_), \
                   " (set NCCL_DEBUG=INFO for details)");                                           \
  } while (0)
#endif

namespace mslr {

#ifdef MSLR_HAVE_NCCL

namespace {

ncclDataType_t nccl_type(const at::Tensor& t) {
  switch (t.scalar_type()) {
    case at::kFloat:
      return ncclFloat32;
    case at::kDouble:
      return ncclFloat64;
    case at::kLong:
      return ncclInt64;
    case at::kInt:
      return ncclInt32;
    case at::kByte:
      return ncclUint8;
    case at::kChar:
      return ncclInt8;
    default:
      fail("NCCL communicator: unsupported element type ", t.scalar_type());
  }
}

class NcclCommunicator : public Communicator {
 public:
  NcclCommunicator(const MpiCommunicator& mpi, int device) : mpi_(mpi), device_(device) {
    MSLR_CUDA_CHECK(cudaSetDevice(device_));
    ncclUniqueId id;
    if (mpi_.rank() == 0) MSLR_NCCL_CHECK(ncclGetUniqueId(&id));
    at::Tensor bytes = at::empty({static_cast<int64_t>(sizeof(id))}, at::kByte);
    std::memcpy(bytes.data_ptr(), &id, sizeof(id));
    mpi_.broadcast(bytes, 0);
    std::memcpy(&id, bytes.data_ptr(), sizeof(id));
    MSLR_NCCL_CHECK(ncclCommInitRank(&comm_, mpi_.size(), id, mpi_.rank()));
  }
  ~NcclCommunicator() override {
    // While an exception unwinds (this rank failed), abort rather than destroy: destroying waits for work
    // that the other ranks may never complete.
    if (!comm_) return;
    if (std::uncaught_exceptions() > 0)
      ncclCommAbort(comm_);
    else
      ncclCommDestroy(comm_);
  }

  int rank() const override { return mpi_.rank(); }
  int size() const override { return mpi_.size(); }
  int local_rank() const override { return mpi_.local_rank(); }
  int local_size() const override { return mpi_.local_size(); }
  int node() const override { return mpi_.node(); }
  std::string backend() const override { return "nccl"; }

  // Device tensors: enqueued on LibTorch's current stream of the communicator's device (gpu::current_stream),
  // the stream the step's kernels went to, so that the reduction is ordered after the backward and before the
  // optimiser step with no host synchronisation. (Not the legacy default stream: NCCL orders its work with the
  // stream it is given only — NCCL docs, "CUDA Stream Semantics" — and LibTorch's current stream need not be
  // the legacy one.)
  void all_reduce_sum(at::Tensor& t) const override { all_reduce(t, ncclSum); }
  void all_reduce_max(at::Tensor& t) const override { all_reduce(t, ncclMax); }

  void broadcast(at::Tensor& t, int root) const override {
    if (!t.is_cuda()) return mpi_.broadcast(t, root);
    check_device(t, "broadcast");
    MSLR_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t),
                                  root, comm_, stream()));
  }
  at::Tensor gather(const at::Tensor& t, int root) const override {
    return mpi_.gather(t.is_cuda() ? t.cpu() : t, root);
  }
  void barrier() const override { mpi_.barrier(); }
  const void* mpi_handle() const override { return mpi_.mpi_handle(); }

 private:
  cudaStream_t stream() const { return static_cast<cudaStream_t>(gpu::current_stream(device_)); }
  void check_device(const at::Tensor& t, const char* what) const {
    MSLR_CHECK(t.is_contiguous(), "NCCL ", what, " needs a contiguous tensor");
    MSLR_CHECK(t.get_device() == device_, "NCCL ", what, ": tensor on cuda:", t.get_device(),
               ", communicator on cuda:", device_);
  }
  void all_reduce(at::Tensor& t, ncclRedOp_t op) const {
    if (!t.is_cuda()) return op == ncclSum ? mpi_.all_reduce_sum(t) : mpi_.all_reduce_max(t);
    check_device(t, "all-reduce");
    MSLR_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), static_cast<size_t>(t.numel()), nccl_type(t),
                                  op, comm_, stream()));
  }

  const MpiCommunicator& mpi_;
  int device_;
  ncclComm_t comm_ = nullptr;
};

}  // namespace

bool nccl_compiled() {
  return true;
}

std::unique_ptr<Communicator> make_nccl_communicator(const MpiCommunicator& mpi, int device) {
  return std::make_unique<NcclCommunicator>(mpi, device);
}

#else  // !MSLR_HAVE_NCCL

bool nccl_compiled() {
  return false;
}
std::unique_ptr<Communicator> make_nccl_communicator(const MpiCommunicator&, int) {
  fail(
      "this mslr was built without NCCL (configure with -DMSLR_WITH_NCCL=ON on a machine with CUDA and "
      "NCCL)");
}

#endif

}  // namespace mslr
