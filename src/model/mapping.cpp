#include "mslr/model/mapping.h"

#include <cmath>
#include <numeric>
#include <sstream>

#include "mslr/core/error.h"

namespace mslr {

std::string MappingSpec::describe() const {
  switch (kind) {
    case kIdentity:
      return "identity";
    case kConcat:
      return "concat";
    case kLinear: {
      std::string s = "linear:";
      for (size_t i = 0; i < out_dims.size(); ++i)
        s += (i ? "," : "") + std::to_string(out_dims[i]);
      return s;
    }
  }
  return "?";
}

MappingSpec parse_mapping(const std::string& text) {
  MappingSpec m;
  if (text == "identity") {
    m.kind = MappingSpec::kIdentity;
  } else if (text == "concat") {
    m.kind = MappingSpec::kConcat;
  } else if (text.rfind("linear:", 0) == 0) {
    m.kind = MappingSpec::kLinear;
    std::stringstream ss(text.substr(7));
    std::string item;
    while (std::getline(ss, item, ',')) {
      char* end = nullptr;
      const long v = std::strtol(item.c_str(), &end, 10);
      MSLR_CHECK(!item.empty() && *end == '\0' && v > 0, "mapping '", text,
                 "': widths must be positive integers, got '", item, "'");
      m.out_dims.push_back(v);
    }
    MSLR_CHECK(!m.out_dims.empty(), "mapping '", text, "' gives no output widths");
  } else {
    fail("unknown mapping '", text, "' (expected identity, concat or linear:W1[,W2...])");
  }
  return m;
}

Mapping::Mapping(const MappingSpec& spec, std::vector<int64_t> in_dims, ParamLayout& layout,
                 const std::string& prefix)
    : kind_(spec.kind), in_dims_(std::move(in_dims)) {
  const int64_t total = std::accumulate(in_dims_.begin(), in_dims_.end(), int64_t{0});
  switch (kind_) {
    case MappingSpec::kIdentity:
      out_dims_ = in_dims_;
      break;
    case MappingSpec::kConcat:
      out_dims_ = {total};
      break;
    case MappingSpec::kLinear:
      out_dims_ = spec.out_dims;
      for (size_t h = 0; h < out_dims_.size(); ++h)
        weights_.push_back(layout.add(prefix + ".w" + std::to_string(h), {total, out_dims_[h]},
                                      Init::normal(1.0 / std::sqrt(static_cast<double>(total)))));
      break;
  }
}

std::vector<at::Tensor> Mapping::forward(const std::vector<at::Tensor>& in,
                                         const std::vector<at::Tensor>& params) const {
  MSLR_CHECK(in.size() == in_dims_.size(), "mapping takes ", in_dims_.size(), " inputs, got ", in.size());
  for (size_t i = 0; i < in.size(); ++i)
    MSLR_CHECK(in[i].size(1) == in_dims_[i], "mapping input ", i, " has width ", in[i].size(1), ", expected ",
               in_dims_[i]);
  if (kind_ == MappingSpec::kIdentity) return in;
  const at::Tensor all = in.size() == 1 ? in[0] : at::cat(in, 1);  // [n, sum d_proj]
  if (kind_ == MappingSpec::kConcat) return {all};
  std::vector<at::Tensor> out;
  for (int w : weights_)
    out.push_back(all.mm(params[w]));
  return out;
}

}  // namespace mslr
