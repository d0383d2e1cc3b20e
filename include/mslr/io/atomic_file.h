// Outputs that appear complete or not at all. Checkpoints, predictions and simulated data files are written
// under a temporary name beside their final one, flushed to disk, renamed into place (rename is atomic within
// a file system) and their directory flushed, so that a job killed at any moment leaves either the previous
// state or the new file, never a half-written one under the final name.
#pragma once

#include <functional>
#include <string>

#include "mslr/comm/communicator.h"

namespace mslr {

// Writes `path` by calling `write(tmp)`, tmp = path + ".tmp", then commits it. With `comm`, every rank calls
// this together, `write` may make collective calls (it must agree on failure, e.g. through run_collectively),
// and rank 0 commits once `write` returned on every rank. On an exception the temporary is removed (by rank
// 0) and the exception goes on.
void write_atomically(const std::string& path, const Communicator* comm,
                      const std::function<void(const std::string& tmp)>& write);

// Flushes a file or a directory to disk; throws naming it and the system's reason.
void fsync_path(const std::string& path, bool directory);

// The directory part of a path ("." when it has none).
std::string dir_of(const std::string& path);

}  // namespace mslr
