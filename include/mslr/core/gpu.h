// What mslr asks of CUDA beyond LibTorch's tensors, in one place: streams, events, page-locked memory,
// device identity and determinism. Everything here works on host tensors too (as the trivial case), so the
// fitter has one code path; CUDA is used only in a build against a LibTorch with CUDA (MSLR_TORCH_CUDA, set
// by CMake when LibTorch's c10_cuda exists), and the CUDA runtime (page-locking, PCI ids) wherever CMake
// found the toolkit. What each call was checked against is said where it is implemented (src/core/gpu.cpp).
#pragma once

#include <ATen/ATen.h>

#include <memory>
#include <string>

namespace mslr::gpu {

// True when this mslr was built against a LibTorch with CUDA: it can put subjects on GPUs.
bool torch_has_cuda();

// LibTorch's current CUDA stream of device `device` (a cudaStream_t), the stream its kernels for that device
// are enqueued on now; nullptr (the legacy default stream) in a build without CUDA.
void* current_stream(int device);

// The PCI bus id of CUDA device `device` ("0000:3b:00.0"), which names the physical GPU whatever
// CUDA_VISIBLE_DEVICES numbers it; "" when unknown (no CUDA runtime, or the call failed).
std::string pci_bus_id(int device);

// Deterministic algorithms for LibTorch's CUDA kernels (index ops without atomics, cuBLAS with a fixed
// workspace: CUBLAS_WORKSPACE_CONFIG, set here unless the environment sets it, before the first cuBLAS call),
// or LibTorch's defaults. A no-op for the CPU, whose kernels mslr uses are deterministic already.
void set_deterministic(bool on);

// `host` (a contiguous CPU tensor) page-locked in place: the same memory registered with the CUDA driver
// (cudaHostRegister), unregistered when the last reference goes. Unlike a copy through LibTorch's pinned
// allocator, it costs no second buffer and no rounding up to a power of two. Returns `host` itself, unpinned,
// without a CUDA runtime.
at::Tensor pin_in_place(const at::Tensor& host);

// A few values of a device tensor read on the host one step after they were computed, waiting only for
// their own copy (an event after it), never for the whole device: record() after the work that produces
// them, read() once before the next record(). On host tensors both are plain copies.
class LateRead {
 public:
  LateRead();
  ~LateRead();
  LateRead(const LateRead&) = delete;
  LateRead& operator=(const LateRead&) = delete;
  // Enqueues a copy of `values` (contiguous) into page-locked host memory on the current stream of its
  // device, and an event after it.
  void record(const at::Tensor& values);
  bool recorded() const;
  // The values of the last record(), on the host; waits for that copy alone.
  at::Tensor read();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Host-to-device copies on a stream of their own, so that the next minibatch's rows travel while the device
// computes the current step. The caller double-buffers: buffer set k (0 or 1) is filled by
//   wait_host(k)  - the host waits until set k's previous copies are done, so its page-locked buffers may be
//                   written again;
//   begin(k)      - set k's copies will start after all the device's current stream has enqueued so far (a
//                   step that still reads set k's device buffers);
//   copy(dst, src) for each buffer, then end(k);
// and read by use(k): the device's current stream waits for set k's copies before its next kernels (no host
// wait). On a host device the copies are plain copies and the waits return at once.
class CopyStream {
 public:
  explicit CopyStream(at::Device device);
  ~CopyStream();
  CopyStream(const CopyStream&) = delete;
  CopyStream& operator=(const CopyStream&) = delete;
  void wait_host(int k);
  void begin(int k);
  void copy(at::Tensor& dst, const at::Tensor& src);
  void end(int k);
  void use(int k);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mslr::gpu
