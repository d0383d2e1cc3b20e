#include "mslr/io/paths.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "h5.h"
#include "mslr/core/error.h"

namespace mslr {

bool is_dir(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_file(const std::string& p) {
  struct stat st;
  return ::stat(p.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

bool same_file(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  return ::stat(a.c_str(), &sa) == 0 && ::stat(b.c_str(), &sb) == 0 && sa.st_dev == sb.st_dev &&
         sa.st_ino == sb.st_ino;
}

std::string absolute_path(const std::string& path) {
  char* full = ::realpath(path.c_str(), nullptr);
  if (!full) return path;
  std::string s = full;
  std::free(full);
  return s;
}

void make_dirs(const std::string& path) {
  std::string partial;
  for (size_t i = 0; i <= path.size(); ++i) {
    if (i == path.size() || path[i] == '/') {
      if (!partial.empty() && !is_dir(partial))
        MSLR_CHECK(::mkdir(partial.c_str(), 0755) == 0 || errno == EEXIST, partial,
                   ": cannot create the folder: ", std::strerror(errno));
    }
    if (i < path.size()) partial += path[i];
  }
  MSLR_CHECK(::access(path.c_str(), W_OK) == 0, path, ": the output folder is not writable");
}

void check_output_file(const std::string& path, const std::string& what,
                       const std::vector<std::string>& inputs, const OutputKind& kind) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return;  // a new file
  for (const auto& input : inputs)
    MSLR_CHECK(!same_file(path, input), what, " ", path, " is the input ", input,
               "; writing there would destroy it (choose another output file)");
  MSLR_CHECK(S_ISREG(st.st_mode), what, " ", path, " is ",
             S_ISDIR(st.st_mode)                          ? "a folder"
             : S_ISFIFO(st.st_mode)                       ? "a FIFO"
             : S_ISCHR(st.st_mode) || S_ISBLK(st.st_mode) ? "a device"
                                                          : "not a regular file",
             "; mslr writes its output as a new regular file and will not replace it");
  bool same_kind = false;
  try {
    const h5::File f(path, h5::File::kRead);
    same_kind = f.has_attr("format") && f.attr_string("format") == kind.format &&
                (kind.attribute.empty() || f.has_attr(kind.attribute));
  } catch (const Error&) {
  }
  MSLR_CHECK(same_kind, what, " ", path, " exists and is not ", kind.describe,
             "; mslr replaces only its own earlier output (remove the file first if it is not needed)");
}

}  // namespace mslr
