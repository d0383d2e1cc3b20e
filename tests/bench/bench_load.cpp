// Benchmark (not a test): memory per rank while loading. Every rank opens the data file collectively, takes
// its subjects by the fitter's placement, reads them (all groups and properties) with hyperslab reads, and
// reports the growth of its peak resident memory against the bytes of its own subjects.
//
//   mpirun -np 2 mslr_bench_load data.h5
#include <cstdio>

#include "mslr/comm/mpi_communicator.h"
#include "mslr/comm/placement.h"
#include "mslr/core/system.h"
#include "mslr/io/data_file.h"

int main(int argc, char** argv) {
  mslr::MpiSession mpi(&argc, &argv);
  const mslr::MpiCommunicator world;
  if (argc < 2) {
    if (world.is_root()) std::fprintf(stderr, "usage: mslr_bench_load DATA.h5\n");
    return 2;
  }
  mslr::DataFile data(argv[1], world);
  std::vector<double> cost;
  for (const auto& s : data.subjects()) {
    double vars = 0;
    for (const auto& [g, w] : s.widths)
      vars += static_cast<double>(w);
    cost.push_back(vars * static_cast<double>(s.n_time));
  }
  const mslr::Placement placement = mslr::place_subjects(cost, world.size(), 1);
  world.barrier();
  const long long before = mslr::resident_bytes();
  std::vector<mslr::SubjectData> mine;
  long long bytes = 0;
  for (int s : placement.subjects_of(world.rank())) {
    mine.push_back(data.read(s, mslr::DataReadOptions{}));
    bytes += mine.back().bytes();
  }
  const long long growth = mslr::peak_resident_bytes() - before;
  at::Tensor row =
      at::tensor(std::vector<int64_t>{world.rank(), static_cast<int64_t>(mine.size()), bytes, growth},
                 at::kLong)
          .view({1, 4});
  const at::Tensor all = world.gather(row, 0);
  if (world.is_root()) {
    std::printf("%-5s %-9s %-16s %-22s %s\n", "rank", "subjects", "own data (MiB)", "peak growth (MiB)",
                "ratio");
    for (int64_t r = 0; r < all.size(0); ++r) {
      const double own = static_cast<double>(all[r][2].item<int64_t>()) / (1 << 20);
      const double grew = static_cast<double>(all[r][3].item<int64_t>()) / (1 << 20);
      std::printf("%-5lld %-9lld %-16.1f %-22.1f %.2f\n", (long long)r, (long long)all[r][1].item<int64_t>(),
                  own, grew, own > 0 ? grew / own : 0.0);
    }
  }
  return 0;
}
