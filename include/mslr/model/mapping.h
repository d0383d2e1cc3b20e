// Mappings m from the G input projections to the H transformed latents (docs/DESIGN.md §1).
#pragma once

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "mslr/model/params.h"

namespace mslr {

struct MappingSpec {
  enum Kind {
    kIdentity,  // H = G, tran_h = proj_h
    kConcat,    // H = 1, tran = [proj_1 ... proj_G]
    kLinear,    // tran_h = [proj_1 ... proj_G] · W_h, W_h: [sum d_proj, out_dims[h]]
  } kind = kConcat;
  std::vector<int64_t> out_dims;  // kLinear only: one width per output

  std::string describe() const;
};

// "identity", "concat", "linear:4,3" (a linear map to two outputs of widths 4 and 3); throws naming the
// value.
MappingSpec parse_mapping(const std::string& text);

class Mapping {
 public:
  // Declares the mapping's parameters (if any) in `layout` under `prefix`.
  Mapping(const MappingSpec& spec, std::vector<int64_t> in_dims, ParamLayout& layout,
          const std::string& prefix);

  const std::vector<int64_t>& in_dims() const { return in_dims_; }
  const std::vector<int64_t>& out_dims() const { return out_dims_; }
  // in[i]: [n, in_dims[i]] -> out[h]: [n, out_dims[h]]; `params` are the views of the declaring layout.
  std::vector<at::Tensor> forward(const std::vector<at::Tensor>& in,
                                  const std::vector<at::Tensor>& params) const;

 private:
  MappingSpec::Kind kind_;
  std::vector<int64_t> in_dims_, out_dims_;
  std::vector<int> weights_;  // kLinear: layout index of W_h
};

}  // namespace mslr
