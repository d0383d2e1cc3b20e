// Paths of the files mslr reads and writes, and the guard every output passes before anything is written:
// an output never replaces one of the command's inputs, nor something that is not a regular file.
#pragma once

#include <string>
#include <vector>

namespace mslr {

bool is_dir(const std::string& path);   // follows links
bool is_file(const std::string& path);  // a regular file; follows links
// Whether two paths name the same existing file or folder (through links, relative parts or hard links).
bool same_file(const std::string& a, const std::string& b);
// `path` made absolute with links resolved; `path` itself when it does not exist.
std::string absolute_path(const std::string& path);
// Creates a folder and its missing parents; throws naming the first that cannot be created, or the folder
// when it is not writable.
void make_dirs(const std::string& path);

// What an existing output may replace: only an earlier output of the same kind, known by its HDF5 "format"
// attribute (and, with `attribute`, one more root attribute it must carry, e.g. "simulate" for simulated
// data, so that recorded data is never replaced by simulated).
struct OutputKind {
  std::string format, attribute, describe;  // describe: "an mslr predictions file"
};

// Throws naming `what` ("--out") and `path` when writing the file `path` would destroy something: it is one
// of `inputs` under any name, it is not a regular file (a folder, a FIFO, a device), or it is a file other
// than an earlier output of `kind`.
void check_output_file(const std::string& path, const std::string& what,
                       const std::vector<std::string>& inputs, const OutputKind& kind);

}  // namespace mslr
