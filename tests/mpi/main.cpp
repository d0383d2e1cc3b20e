// GoogleTest main for the multi-rank tests: every rank runs every test in the same order (tests may use
// collectives); only rank 0 prints; the exit status is non-zero when a test failed on any rank.
#include <gtest/gtest.h>

#include "mpi_env.h"
#include "mslr/comm/mpi_communicator.h"

namespace mslr::test {

const MpiCommunicator& world() {
  static MpiCommunicator comm;
  return comm;
}

}  // namespace mslr::test

int main(int argc, char** argv) {
  mslr::MpiSession mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  const auto& comm = mslr::test::world();
  if (comm.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  const int64_t failed_anywhere = comm.sum(failed);
  if (failed_anywhere && comm.rank() == 0)
    std::fprintf(stderr, "tests failed on %lld rank(s)\n", (long long)failed_anywhere);
  return failed_anywhere ? 1 : 0;
}
