#include "mslr/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "mslr/core/error.h"
#include "mslr/core/fault.h"

namespace mslr {

std::string dir_of(const std::string& path) {
  const auto slash = path.find_last_of('/');
  return slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
}

void fsync_path(const std::string& path, bool directory) {
  const int fd = ::open(path.c_str(), O_RDONLY | (directory ? O_DIRECTORY : 0));
  MSLR_CHECK(fd >= 0, path, ": cannot open to flush: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  ::close(fd);
  MSLR_CHECK(rc == 0, path, ": cannot flush to disk: ", std::strerror(errno));
}

void write_atomically(const std::string& path, const Communicator* comm,
                      const std::function<void(const std::string& tmp)>& write) {
  const std::string tmp = path + ".tmp";
  const bool root = !comm || comm->is_root();
  try {
    write(tmp);
    auto commit = [&] {
      fault_point("output", comm ? comm->rank() : 0);
      if (!root) return;
      fsync_path(tmp, false);
      MSLR_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, path,
                 ": cannot rename the finished file into place: ", std::strerror(errno));
      fsync_path(dir_of(path), true);
    };
    if (comm)
      run_collectively(*comm, commit);
    else
      commit();
  } catch (...) {
    if (root) ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace mslr
