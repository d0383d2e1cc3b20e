// GoogleTest main for the unit tests: one thread in LibTorch's and OpenBLAS's pools, as each rank of a fit
// would have on a 2-core machine, so that tests run alike everywhere.
#include <gtest/gtest.h>

#include "mslr/core/system.h"

int main(int argc, char** argv) {
  mslr::limit_threads(1);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
