// Benchmark (not a test) for the scaling model (tools/scaling_model.py).
//
//   mpirun -np 2 mslr_bench_comm allreduce [REPS]
//       times the step's one collective, mslr's all-reduce of a float64 host buffer (the shared gradient and
//       two flags), for buffers of 1 to 64 KiB and beyond; rank 0 prints "bytes,seconds" (the median of REPS
//       timed calls after warm-up), one line per size.
//   mslr_bench_comm placement RANKS COST...
//       places subjects of those costs on RANKS ranks with the fitter's own placement (comm/placement.h) and
//       prints "ranks,max_load,mean_load,imbalance".
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "mslr/comm/mpi_communicator.h"
#include "mslr/comm/placement.h"

namespace {

int allreduce(const mslr::MpiCommunicator& world, int reps) {
  if (world.is_root()) std::printf("bytes,seconds\n");
  for (int64_t bytes = 1024; bytes <= (1 << 20); bytes *= 2) {
    at::Tensor buf = at::ones({bytes / 8}, at::kDouble);
    std::vector<double> seconds;
    for (int r = 0; r < reps + 5; ++r) {
      world.barrier();
      const auto t0 = std::chrono::steady_clock::now();
      world.all_reduce_sum(buf);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r >= 5) seconds.push_back(s);  // after warm-up
    }
    // Every rank's median, then the slowest rank's: a step waits for the last rank to finish.
    std::nth_element(seconds.begin(), seconds.begin() + seconds.size() / 2, seconds.end());
    at::Tensor median = at::full({1}, seconds[seconds.size() / 2], at::kDouble);
    world.all_reduce_max(median);
    if (world.is_root()) std::printf("%lld,%.9g\n", static_cast<long long>(bytes), median.item<double>());
  }
  return 0;
}

int placement(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: mslr_bench_comm placement RANKS COST...\n");
    return 2;
  }
  const int ranks = std::atoi(argv[2]);
  std::vector<double> cost;
  for (int i = 3; i < argc; ++i)
    cost.push_back(std::atof(argv[i]));
  const mslr::Placement p = mslr::place_subjects(cost, ranks, 1);
  const double max = *std::max_element(p.rank_load.begin(), p.rank_load.end());
  double mean = 0;
  for (double l : p.rank_load)
    mean += l / static_cast<double>(p.rank_load.size());
  std::printf("ranks,max_load,mean_load,imbalance\n%d,%.9g,%.9g,%.9g\n", ranks, max, mean, p.imbalance());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string what = argc > 1 ? argv[1] : "";
  if (what == "placement") return placement(argc, argv);
  if (what != "allreduce") {
    std::fprintf(stderr, "usage: mslr_bench_comm allreduce [REPS] | placement RANKS COST...\n");
    return 2;
  }
  mslr::MpiSession mpi(&argc, &argv);
  const mslr::MpiCommunicator world;
  return allreduce(world, argc > 2 ? std::atoi(argv[2]) : 200);
}
