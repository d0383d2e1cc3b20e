#include "mslr/io/predictions.h"

#include "h5.h"
#include "mslr/core/error.h"
#include "mslr/io/subject_arrays.h"
#include "mslr/model/params.h"

namespace mslr {
namespace {
constexpr const char* kFormat = "mslr-predictions";
}

void write_predictions(const std::string& path, const Communicator& comm, const PredictionsHeader& header,
                       const std::map<int, SubjectPredictionData>& mine) {
  SubjectArraysLayout layout;
  layout.attributes = {{"format", kFormat},
                       {"checkpoint", header.checkpoint},
                       {"data", header.data},
                       {"split", header.split},
                       {"config", header.config}};
  layout.int_attributes = {{"version", 1}};
  for (const auto& s : header.subjects) {
    SubjectArraysLayout::Subject out{s.name, {{"times", {s.samples}, at::kLong}}, {}};
    for (const auto& [group, width] : s.outputs)
      out.arrays.push_back({group, {s.samples, width}, at::kFloat});
    out.arrays.push_back({"nll", {}, at::kDouble});
    out.attributes = {{"samples", s.samples}, {"in_fit", static_cast<int64_t>(s.in_fit)}};
    layout.subjects.push_back(std::move(out));
  }
  std::map<int, std::map<std::string, at::Tensor>> values;
  for (const auto& [i, p] : mine) {
    auto& v = values[i];
    v["times"] = p.times;
    v.insert(p.means.begin(), p.means.end());
    v["nll"] = at::scalar_tensor(p.nll, at::kDouble);
  }
  write_subject_arrays(path, comm, layout, values);
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
