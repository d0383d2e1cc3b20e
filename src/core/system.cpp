#include "mslr/core/system.h"

#include <ATen/Parallel.h>
#include <dlfcn.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <sched.h>
#include <unistd.h>
#ifdef MSLR_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif

#include <algorithm>
#include <cstdio>
#include <cstring>

namespace mslr {

int cores_for_rank(int local_ranks) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const long online = std::max(1L, sysconf(_SC_NPROCESSORS_ONLN));
  if (sched_getaffinity(0, sizeof set, &set) != 0) return 1;
  const int bound = CPU_COUNT(&set);
  if (bound >= online && local_ranks > 1) return std::max(1, bound / local_ranks);
  return std::max(1, bound);
}

void limit_threads(int n, int blas) {
  n = std::max(1, n);
  blas = std::max(1, std::min(blas, n));
  at::set_num_threads(n);
#ifdef _OPENMP
  // at::parallel_for runs its loops with the OpenMP runtime mslr is compiled against (CMakeLists.txt); where
  // LibTorch bundles a runtime of its own, at::set_num_threads does not size this one.
  omp_set_num_threads(n);
#endif
  // The inter-op pool can only be sized before its first use; later calls throw, which is harmless here.
  try {
    at::set_num_interop_threads(1);
  } catch (...) {
  }
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(blas);
}

int openblas_threads() {
  using GetThreads = int (*)();
  if (auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"))) return get();
  return -1;
}

namespace {

long long status_kib(const char* key, const char* file = "/proc/self/status") {
  FILE* f = std::fopen(file, "r");
  if (!f) return -1;
  char line[256];
  long long v = -1;
  const size_t n = std::strlen(key);
  while (std::fgets(line, sizeof line, f))
    if (std::strncmp(line, key, n) == 0) {
      std::sscanf(line + n, "%lld", &v);
      break;
    }
  std::fclose(f);
  return v;
}

}  // namespace

long long resident_bytes() {
  const long long k = status_kib("VmRSS:");
  return k < 0 ? -1 : k * 1024;
}

long long peak_resident_bytes() {
  const long long k = status_kib("VmHWM:");
  return k < 0 ? -1 : k * 1024;
}

std::string human_bytes(double b) {
  if (b < 0) return "?";
  const char* unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024 && u < 6)
    b /= 1024, ++u;
  char buf[48];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : b < 1e6 ? "%.1f %s" : "%.3g %s", b, unit[u]);
  return buf;
}

long long available_memory_bytes() {
  const long long k = status_kib("MemAvailable:", "/proc/meminfo");
  return k < 0 ? -1 : k * 1024;
}

namespace {

// Free and total memory of CUDA device `device`, queried without changing the calling thread's device.
bool cuda_memory_info(int device, size_t* free_b, size_t* total_b) {
#ifdef MSLR_HAVE_CUDA
  int previous = 0;
  if (cudaGetDevice(&previous) != cudaSuccess || cudaSetDevice(device) != cudaSuccess) return false;
  const bool ok = cudaMemGetInfo(free_b, total_b) == cudaSuccess;
  cudaSetDevice(previous);
  return ok;
#else
  (void)device, (void)free_b, (void)total_b;
  return false;
#endif
}

}  // namespace

long long cuda_memory_used(int device) {
  size_t free_b = 0, total_b = 0;
  return cuda_memory_info(device, &free_b, &total_b) ? static_cast<long long>(total_b - free_b) : -1;
}

long long cuda_memory_free(int device) {
  size_t free_b = 0, total_b = 0;
  return cuda_memory_info(device, &free_b, &total_b) ? static_cast<long long>(free_b) : -1;
}

}  // namespace mslr
