// The HDF5 layer distrusts what a file declares: reads never allocate beyond the node's memory, values are
// never silently converted out of range, floats are never read as integers, and a failed write leaves the
// file abandoned rather than half-closed. Files are written by this process alone (no MPI-IO).
#include "io/h5.h"

#include <hdf5.h>
#include <unistd.h>

#include <cstdio>

#include "test_util.h"

namespace mslr {
namespace {

using test::error_of;

std::string scratch(const char* name) {
  return std::string(::testing::TempDir()) + "/mslr-hdf5-" + std::to_string(::getpid()) + "-" + name;
}

TEST(Hdf5, ReadingMoreThanTheNodesMemoryIsRefusedBeforeAllocating) {
  const std::string path = scratch("huge.h5");
  {
    h5::File f(path, h5::File::kCreate);
    f.create("never_written", {int64_t{1} << 40, 4}, at::kFloat);  // declares 16 TiB, stores nothing
    f.close();
  }
  h5::File f(path, h5::File::kRead);
  const h5::ObjectInfo info = f.info("never_written");
  EXPECT_EQ(info.kind, h5::ObjectInfo::kDataset);
  EXPECT_EQ(info.shape, (std::vector<int64_t>{int64_t{1} << 40, 4}));
  EXPECT_EQ(info.stored_bytes, 0);
  const std::string msg = error_of([&] { f.read("never_written", at::kFloat); });
  EXPECT_NE(msg.find("/never_written would need 16.0 TiB of memory to read, more than the"),
            std::string::npos)
      << msg;
  EXPECT_NE(error_of([&] { f.read_rows("never_written", 0, int64_t{1} << 38, at::kDouble); }).find("8.0 TiB"),
            std::string::npos);
  // A few rows are fine (the fill value).
  EXPECT_EQ(f.read_rows("never_written", 5, 3, at::kFloat).sum().item<float>(), 0.0f);
  std::remove(path.c_str());
}

TEST(Hdf5, ValuesBeyondTheAskedTypeAndFloatsAsIntegersAreRefused) {
  const std::string path = scratch("values.h5");
  {
    h5::File f(path, h5::File::kCreate);
    f.put("big", at::tensor({1.0, 1e39, 2.0}, at::kDouble));
    f.put("fractions", at::tensor({0.5, 120.7}, at::kDouble));
    f.put("group/inside", at::ones({2}, at::kFloat));
    f.close();
  }
  h5::File f(path, h5::File::kRead);
  EXPECT_EQ(f.read("big", at::kDouble)[1].item<double>(), 1e39);
  EXPECT_NE(
      error_of([&] { f.read("big", at::kFloat); }).find("/big holds a value beyond the range of float32"),
      std::string::npos);
  EXPECT_NE(error_of([&] {
              f.read("fractions", at::kLong);
            }).find("/fractions holds floating-point numbers where integers are expected"),
            std::string::npos);
  EXPECT_NE(error_of([&] { f.read("group", at::kFloat); }).find("/group is a group, not a dataset"),
            std::string::npos);
  EXPECT_EQ(f.info("group").kind, h5::ObjectInfo::kGroup);
  EXPECT_EQ(f.info("nothing").kind, h5::ObjectInfo::kMissing);
  std::remove(path.c_str());
}

TEST(Hdf5, LinksToOtherFilesAreRefusedAndSoftLinksFollowed) {
  const std::string path = scratch("links.h5");
  {
    h5::File f(path, h5::File::kCreate);
    f.put("a/x", at::ones({3}, at::kFloat));
    f.close();
    // Links are made with the C API: mslr itself never writes them.
    const hid_t id = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    H5Lcreate_soft("/a", id, "soft", H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_external("other.h5", "/y", id, "external", H5P_DEFAULT, H5P_DEFAULT);
    H5Lcreate_soft("/external/z", id, "soft_to_external", H5P_DEFAULT, H5P_DEFAULT);
    H5Fclose(id);
  }
  h5::File f(path, h5::File::kRead);
  EXPECT_TRUE(f.exists("soft/x"));
  EXPECT_EQ(f.read("soft/x", at::kFloat).sum().item<float>(), 3.0f);
  EXPECT_NE(
      error_of([&] {
        f.exists("external");
      }).find(": /external is a link to another file (other.h5:/y); mslr reads only what is stored in the file"),
      std::string::npos);
  EXPECT_NE(
      error_of([&] { f.read("soft_to_external", at::kFloat); }).find("/external is a link to another file"),
      std::string::npos);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace mslr
