#include "mslr/io/subject_arrays.h"

#include "h5.h"
#include "mslr/core/error.h"
#include "mslr/io/atomic_file.h"

namespace mslr {

void write_subject_arrays(const std::string& path, const Communicator& comm,
                          const SubjectArraysLayout& layout,
                          const std::map<int, std::map<std::string, at::Tensor>>& mine) {
  write_atomically(path, &comm, [&](const std::string& tmp) {
    std::unique_ptr<h5::File> f;
    run_collectively(comm, [&] { f = std::make_unique<h5::File>(tmp, h5::File::kCreate, &comm); });
    // Parallel HDF5's metadata is collective: every rank creates every object with the same arguments.
    run_collectively(comm, [&] {
      for (const auto& [k, v] : layout.attributes)
        f->set_attr(k, v);
      for (const auto& [k, v] : layout.int_attributes)
        f->set_attr(k, v);
      for (const auto& s : layout.subjects) {
        const h5::Location g = f->create_group("subjects/" + s.name);
        for (const auto& a : s.arrays)
          g.create(a.path, a.shape, a.dtype);
        for (const auto& [k, v] : s.attributes)
          g.set_attr(k, v);
      }
    });
    run_collectively(comm, [&] {
      for (const auto& [i, arrays] : mine) {
        const SubjectArraysLayout::Subject& s = layout.subjects.at(i);
        for (const auto& a : s.arrays) {
          const auto it = arrays.find(a.path);
          MSLR_CHECK(it != arrays.end(), path, ": subject '", s.name, "' has no values for '", a.path, "'");
          f->write("subjects/" + s.name + "/" + a.path, it->second.to(a.dtype).contiguous());
        }
      }
    });
    run_collectively(comm, [&] { f->close(); });
  });
}

}  // namespace mslr
