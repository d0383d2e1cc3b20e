#include "mslr/io/run_folder.h"

#include <sys/stat.h>

#include <cstdio>

#include "mslr/io/checkpoint.h"
#include "mslr/io/paths.h"

namespace mslr {

namespace fs = std::filesystem;

fs::path RunFolder::of_checkpoint(const std::string& checkpoint) {
  const fs::path dir = fs::path(checkpoint).parent_path();
  if (dir.filename() != "checkpoints") return {};
  const fs::path run = dir.parent_path();
  return run.empty() ? fs::path(".") : run;
}

std::string RunFolder::checkpoint_name(int epoch, int batch) {
  char name[64];
  if (batch == 0)
    std::snprintf(name, sizeof name, "epoch-%06d.h5", epoch);
  else
    std::snprintf(name, sizeof name, "epoch-%06d-batch-%05d.h5", epoch, batch);
  return name;
}

bool RunFolder::holds_fit() const {
  struct stat st;
  return ::lstat(latest().c_str(), &st) == 0;
}

void RunFolder::clear() const {
  std::error_code ignored;
  for (const fs::path& p : {metrics(), config(), latest()})
    fs::remove(p, ignored);
  for (fs::directory_iterator it(checkpoints(), ignored), end; !ignored && it != end; it.increment(ignored)) {
    const std::string n = it->path().filename().string();
    if (n.rfind("epoch-", 0) == 0 || n.rfind(final_name(), 0) == 0) fs::remove(it->path(), ignored);
  }
}

void RunFolder::create() const {
  make_dirs(checkpoints().string());
}

void RunFolder::publish(const std::string& name, int keep) const {
  point_link(latest().string(), name);
  prune_checkpoints(checkpoints().string(), keep);
}

}  // namespace mslr
