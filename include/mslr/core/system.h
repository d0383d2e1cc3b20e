// What a rank knows about its process: thread limits and memory use, of the host and of its GPUs.
//
// Per-rank thread limits. LibTorch's intra-op pool and OpenBLAS's own pool are separate: limiting one does
// not limit the other, and two full pools on the same cores made fits 2-3x slower. mslr sets both.
#pragma once

#include <string>

namespace mslr {

// Cores this process may run on (its CPU affinity mask). When the mask covers the whole machine (ranks not
// bound by the launcher), the machine's cores are shared evenly among the `local_ranks` ranks of the node.
int cores_for_rank(int local_ranks);

// Sets LibTorch's intra-op threads to `n`, its inter-op threads to 1, and OpenBLAS's threads to `blas` (at
// most n). The two pools spin while waiting for work and fight over the same cores when both are wide: on 2
// cores a fit took 0.75 s/epoch with both at 2 threads, 0.23 with LibTorch at 2 and OpenBLAS at 1, 0.30 the
// other way round; so by default OpenBLAS gets one thread and LibTorch the rank's cores.
void limit_threads(int n, int blas = 1);

// Threads OpenBLAS will use, or -1 when the BLAS in use is not OpenBLAS (looked up at run time).
int openblas_threads();

// Resident memory of this process now and at its peak (VmRSS, VmHWM), in bytes; -1 when unknown.
long long resident_bytes();
long long peak_resident_bytes();
// Memory the node can still give without swapping (MemAvailable), in bytes; -1 when unknown.
long long available_memory_bytes();
// Bytes of device memory in use (total - free) and free on CUDA device `device`; -1 when unknown or when
// this mslr was built without CUDA.
long long cuda_memory_used(int device);
long long cuda_memory_free(int device);
// "1.5 GiB"; "?" for a negative count.
std::string human_bytes(double bytes);

}  // namespace mslr
