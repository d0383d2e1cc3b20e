// The mslr-data v1 input format (docs/DESIGN.md §5), readable and writable with h5py:
//
//   /                                       attrs format="mslr-data", version=1
//   /subjects/<name>/groups/<group>         float [T, d]
//   /subjects/<name>/props/<group>          float [d, n_props]   (optional)
//   /subjects/<name>/segments               int64 [k, 2]         (optional) [start, end) of recordings
//   /subjects/<name>/modes/<group>          float [d, K]         (optional) given modes of the group (model
//                                                                source "given"); modes/p.<group> and
//                                                                modes/u.<group> when its two sides differ
//   /subjects/<name>/split/train|test       int64 [k, 2] ranges [start, end), or an integer 0/1 mask [T]
//                                                                (optional) the subject's own split, used
//                                                                with --split-from-data
//   /subjects/<name>/truth/means/<group>    float [T, d]         (optional) noise-free means, row 0 NaN
//   /subjects/<name>/truth/...              (optional) anything else a simulator knows
#pragma once

#include <memory>
#include <set>
#include <string>
#include <vector>

#include "mslr/comm/communicator.h"
#include "mslr/data/subject_data.h"

namespace mslr {

namespace h5 {
class File;
}

struct DataReadOptions {
  std::set<std::string> groups;  // groups to read; empty = all
  bool props = true;
  bool true_means = false;
  int64_t rows =
      -1;  // read time points [0, rows) only (-1: all); the fit reads no further than its training data
};

class DataFile {
 public:
  // Opens `path` on every rank of `comm` (collective). Rank 0 reads the description of every subject and
  // broadcasts it. Throws on every rank, naming the file, subject and dataset, when the file is missing, not
  // HDF5, not mslr-data v1, or inconsistent (group lengths, property rows, segments).
  DataFile(const std::string& path, const Communicator& comm);
  ~DataFile();

  const std::string& path() const { return path_; }
  const std::vector<SubjectInfo>& subjects() const { return infos_; }
  // The root attribute "model" (the [model] section of the model that generated a simulated file), or "".
  const std::string& model_config() const { return model_config_; }
  // Index of a subject by name; throws naming the file and the subject.
  int index_of(const std::string& name) const;
  // Reads one subject with hyperslab reads (independent: only the calling rank). Checks that every value read
  // is finite, naming subject, group and the first bad index otherwise.
  SubjectData read(int subject, const DataReadOptions& options) const;

 private:
  std::string path_;
  std::unique_ptr<h5::File> file_;
  std::vector<SubjectInfo> infos_;
  std::string model_config_;
};

// Writes an mslr-data v1 file from one process. Subjects are written in the given order under their names;
// `attributes` become root attributes (e.g. "model", "simulate").
void write_data_file(const std::string& path, const std::vector<SubjectData>& subjects,
                     const std::map<std::string, std::string>& attributes = {});

// Throws "<file>: subject 'S', group 'G' has a non-finite value (nan) at time t, variable j" for the first
// non-finite value of x [T, d] (or "property" rows for props), without temporaries of x's size. With a
// 1-D x or no `col_name`: "... at <row_name> i", i the flat index.
void check_finite(const at::Tensor& x, const std::string& where, const char* row_name, const char* col_name);

}  // namespace mslr
