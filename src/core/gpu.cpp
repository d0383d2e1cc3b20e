// CUDA beyond tensors (core/gpu.h). Checked against, for each piece:
// - current_stream: c10::cuda::getCurrentCUDAStream(device) is the stream LibTorch enqueues that device's
//   kernels on (c10/cuda/CUDAStream.h, the same in LibTorch 1.13 and 2.x); NCCL's calls take a cudaStream_t and
//   are ordered with the kernels of that stream only (NCCL docs, "CUDA Stream Semantics"), so the all-reduce
//   must go on this stream, not on the legacy default one, which a caller may have replaced.
// - LateRead: a non-blocking copy into page-locked memory returns before it is done; at::cuda::CUDAEvent
//   recorded after it on the same stream and synchronize()d waits for that copy and what came before it on
//   that stream, not for other streams or later work (CUDA Runtime API, cudaEventSynchronize).
// - CopyStream: c10::cuda::getStreamFromPool gives a stream of LibTorch's pool; CUDAEvent::block(stream) is
//   cudaStreamWaitEvent: the stream waits on the device, the host does not (CUDA Runtime API). Buffers are
//   allocated once and never freed while in use, so no record_stream is needed for the caching allocator.
// - pin_in_place: cudaHostRegister page-locks existing memory, cudaHostUnregister undoes it before the memory
//   is freed (CUDA Runtime API); LibTorch's is_pinned() reports such memory as pinned (it asks
//   cudaPointerGetAttributes), so its non-blocking copies from it are truly asynchronous.
// - set_deterministic: at::Context::setDeterministicAlgorithms(bool, bool warn_only) and
//   setDeterministicCuDNN, as in LibTorch 1.13 and 2.x (ATen/Context.h); cuBLAS is deterministic with a fixed
//   workspace given by CUBLAS_WORKSPACE_CONFIG=:4096:8 before its handle is created (cuBLAS docs,
//   "Results reproducibility"; PyTorch's notes on reproducibility).
// - pci_bus_id: cudaDeviceGetPCIBusId (CUDA Runtime API).
#include "mslr/core/gpu.h"

#include <cstdlib>

#include "mslr/core/error.h"
#include "mslr/core/system.h"

#ifdef MSLR_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef MSLR_TORCH_CUDA
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace mslr::gpu {

bool torch_has_cuda() {
#ifdef MSLR_TORCH_CUDA
  return true;
#else
  return false;
#endif
}

void* current_stream(int device) {
#ifdef MSLR_TORCH_CUDA
  return static_cast<void*>(c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device)).stream());
#else
  (void)device;
  return nullptr;
#endif
}

std::string pci_bus_id(int device) {
#ifdef MSLR_HAVE_CUDA
  char id[64] = {};
  if (cudaDeviceGetPCIBusId(id, sizeof id, device) == cudaSuccess) return id;
#else
  (void)device;
#endif
  return "";
}

void set_deterministic(bool on) {
  // Before the first cuBLAS handle: the fitter calls this before it creates any CUDA tensor.
  if (on) setenv("CUBLAS_WORKSPACE_CONFIG", ":4096:8", /*overwrite=*/0);
  at::globalContext().setDeterministicAlgorithms(on, /*warn_only=*/false);
  at::globalContext().setDeterministicCuDNN(on);
}

at::Tensor pin_in_place(const at::Tensor& host) {
  MSLR_CHECK(host.device().is_cpu() && host.is_contiguous(), "pin_in_place: a contiguous host tensor");
#ifdef MSLR_HAVE_CUDA
  const size_t bytes = static_cast<size_t>(host.numel()) * host.element_size();
  if (bytes == 0) return host;
  void* p = host.data_ptr();
  const cudaError_t rc = cudaHostRegister(p, bytes, cudaHostRegisterDefault);
  MSLR_CHECK(rc == cudaSuccess, "cannot page-lock ", human_bytes(static_cast<double>(bytes)),
             " of host memory: ", cudaGetErrorString(rc),
             " (the node's limit of locked memory? see ulimit -l)");
  // The deleter keeps the original storage alive until the registration is undone.
  at::Tensor keep = host;
  return at::from_blob(
      p, host.sizes(),
      [keep](void* q) mutable {
        cudaHostUnregister(q);
        keep = at::Tensor();
      },
      host.options());
#else
  return host;
#endif
}

// ---- LateRead ------------------------------------------------------------------------------------------------

struct LateRead::Impl {
  at::Tensor host;  // page-locked when the values live on a GPU
  bool recorded = false;
#ifdef MSLR_TORCH_CUDA
  at::cuda::CUDAEvent done;
  bool on_device = false;
#endif
};

LateRead::LateRead() : impl_(std::make_unique<Impl>()) {}
LateRead::~LateRead() = default;

void LateRead::record(const at::Tensor& values) {
  Impl& m = *impl_;
  if (!m.host.defined() || m.host.numel() != values.numel() || m.host.scalar_type() != values.scalar_type())
    m.host = at::empty(values.sizes(), values.options().device(at::kCPU).pinned_memory(values.is_cuda()));
#ifdef MSLR_TORCH_CUDA
  m.on_device = values.is_cuda();
  if (m.on_device) {
    m.host.copy_(values, /*non_blocking=*/true);
    m.done.record(c10::cuda::getCurrentCUDAStream(values.get_device()));
    m.recorded = true;
    return;
  }
#endif
  m.host.copy_(values);
  m.recorded = true;
}

bool LateRead::recorded() const {
  return impl_->recorded;
}

at::Tensor LateRead::read() {
  Impl& m = *impl_;
  MSLR_CHECK(m.recorded, "LateRead: read() before record()");
#ifdef MSLR_TORCH_CUDA
  if (m.on_device) m.done.synchronize();
#endif
  return m.host;
}

// ---- CopyStream ----------------------------------------------------------------------------------------------

struct CopyStream::Impl {
  at::Device device{at::kCPU};
#ifdef MSLR_TORCH_CUDA
  std::unique_ptr<c10::cuda::CUDAStream> stream;
  at::cuda::CUDAEvent compute_done, copied[2];
  bool pending[2] = {false, false};
  int open = -1;
#endif
};

CopyStream::CopyStream(at::Device device) : impl_(std::make_unique<Impl>()) {
  impl_->device = device;
#ifdef MSLR_TORCH_CUDA
  if (device.is_cuda())
    impl_->stream = std::make_unique<c10::cuda::CUDAStream>(
        c10::cuda::getStreamFromPool(/*isHighPriority=*/false, device.index()));
#endif
}

CopyStream::~CopyStream() = default;

void CopyStream::wait_host(int k) {
#ifdef MSLR_TORCH_CUDA
  Impl& m = *impl_;
  if (m.stream && m.pending[k]) {
    m.copied[k].synchronize();
    m.pending[k] = false;
  }
#else
  (void)k;
#endif
}

void CopyStream::begin(int k) {
#ifdef MSLR_TORCH_CUDA
  Impl& m = *impl_;
  if (!m.stream) return;
  m.open = k;
  m.compute_done.record(c10::cuda::getCurrentCUDAStream(m.device.index()));
  m.compute_done.block(*m.stream);
#else
  (void)k;
#endif
}

void CopyStream::copy(at::Tensor& dst, const at::Tensor& src) {
#ifdef MSLR_TORCH_CUDA
  Impl& m = *impl_;
  if (m.stream) {
    MSLR_CHECK(m.open >= 0, "CopyStream: copy() outside begin() and end()");
    const c10::cuda::CUDAStreamGuard guard(*m.stream);
    dst.copy_(src, /*non_blocking=*/true);
    return;
  }
#endif
  dst.copy_(src);
}

void CopyStream::end(int k) {
#ifdef MSLR_TORCH_CUDA
  Impl& m = *impl_;
  if (!m.stream) return;
  m.copied[k].record(*m.stream);
  m.pending[k] = true;
  m.open = -1;
#else
  (void)k;
#endif
}

void CopyStream::use(int k) {
#ifdef MSLR_TORCH_CUDA
  Impl& m = *impl_;
  if (m.stream && m.pending[k]) m.copied[k].block(c10::cuda::getCurrentCUDAStream(m.device.index()));
#else
  (void)k;
#endif
}

}  // namespace mslr::gpu
