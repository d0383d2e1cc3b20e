#include "mslr/io/predictions.h"

#include "mslr/core/error.h"
#include "mslr/io/atomic_file.h"
#include "h5.h"
#include "mslr/model/params.h"

namespace mslr {
namespace {
constexpr const char* kFormat = "mslr-predictions";
}

void write_predictions(const std::string& path, const Communicator& comm, const PredictionsHeader& header,
                       const std::map<int, SubjectPredictionData>& mine) {
  write_atomically(path, &comm, [&](const std::string& tmp) {
    std::unique_ptr<h5::File> f;
    run_collectively(comm, [&] { f = std::make_unique<h5::File>(tmp, h5::File::kCreate, &comm); });
    run_collectively(comm, [&] {
      f->set_attr("format", std::string(kFormat));
      f->set_attr("version", int64_t{1});
      f->set_attr("checkpoint", header.checkpoint);
      f->set_attr("data", header.data);
      f->set_attr("split", header.split);
      f->set_attr("config", header.config);
      for (const auto& s : header.subjects) {
        const h5::Location g = f->create_group("subjects/" + s.name);
        g.create("times", {s.samples}, at::kLong);
        for (const auto& [group, width] : s.outputs)
          g.create(group, {s.samples, width}, at::kFloat);
        g.create("nll", {}, at::kDouble);
        g.set_attr("samples", s.samples);
        g.set_attr("in_fit", static_cast<int64_t>(s.in_fit));
      }
    });
    run_collectively(comm, [&] {
      for (const auto& [i, p] : mine) {
        const std::string base = "subjects/" + header.subjects.at(i).name + "/";
        f->write(base + "times", p.times);
        for (const auto& [group, m] : p.means)
          f->write(base + group, m.to(at::kFloat));
        f->write(base + "nll", at::scalar_tensor(p.nll, at::kDouble));
      }
    });
    run_collectively(comm, [&] { f->close(); });
  });
}

Predictions read_predictions(const std::string& path) {
  h5::File f(path, h5::File::kRead);
  MSLR_CHECK(f.has_attr("format") && f.attr_string("format") == kFormat, path,
             ": not an mslr predictions file");
  Predictions p;
  p.header.checkpoint = f.attr_string("checkpoint");
  p.header.data = f.attr_string("data");
  p.header.split = f.attr_string("split");
  if (f.has_attr("config")) p.header.config = f.attr_string("config");
  const h5::Location subjects = f.group("subjects");
  for (const std::string& name : subjects.children()) {
    const h5::Location g = subjects.group(name);
    const std::string who = cat(path, ": subject '", name, "'");
    PredictionsHeader::Subject s;
    s.name = name;
    s.samples = g.attr_int("samples");
    s.in_fit = g.attr_int("in_fit") != 0;
    SubjectPredictionData d;
    d.times = g.read("times", at::kLong);
    MSLR_CHECK(d.times.dim() == 1 && d.times.numel() == s.samples, who, ": 'times' is ",
               shape_str(d.times.sizes()), ", the 'samples' attribute says ", s.samples);
    const at::Tensor nll = g.read("nll", at::kDouble);
    MSLR_CHECK(nll.dim() == 0, who, ": 'nll' must be a single value, is ", shape_str(nll.sizes()));
    d.nll = nll.item<double>();
    for (const std::string& child : g.children()) {
      if (child == "times" || child == "nll") continue;
      const auto shape = g.info(child).shape;
      MSLR_CHECK(shape.size() == 2 && shape[0] == s.samples, who, ": predictions of group '", child, "' are ",
                 shape_str(shape), ", expected [", s.samples, ", variables]");
      d.means[child] = g.read(child, at::kFloat);
      s.outputs.emplace_back(child, d.means[child].size(1));
    }
    p.header.subjects.push_back(s);
    p.subjects.push_back(d);
  }
  return p;
}

}  // namespace mslr
