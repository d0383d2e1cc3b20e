#include "mslr/model/params.h"

#include "mslr/core/error.h"
#include "mslr/core/rng.h"

namespace mslr {

std::string shape_str(at::IntArrayRef shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

int ParamLayout::add(const std::string& name, std::vector<int64_t> shape, Init init) {
  MSLR_CHECK(!contains(name), "parameter '", name, "' declared twice");
  int64_t n = 1;
  for (int64_t d : shape) {
    MSLR_CHECK(d >= 0, "parameter '", name, "' has a negative dimension ", shape_str(shape));
    n *= d;
  }
  MSLR_CHECK(init.kind != Init::kIdentity || shape.size() == 2, "parameter '", name,
             "': identity start needs 2 dimensions, has ", shape_str(shape));
  entries_.push_back({name, std::move(shape), numel_, n, init});
  numel_ += n;
  return size() - 1;
}

bool ParamLayout::contains(const std::string& name) const {
  for (const auto& e : entries_)
    if (e.name == name) return true;
  return false;
}

int ParamLayout::index_of(const std::string& name) const {
  for (int i = 0; i < size(); ++i)
    if (entries_[i].name == name) return i;
  fail("no parameter named '", name, "'");
}

at::Tensor ParamLayout::view(const at::Tensor& flat, int i) const {
  const ParamEntry& e = entries_[i];
  return flat.narrow(0, e.offset, e.numel).view(e.shape);
}

std::vector<at::Tensor> ParamLayout::views(const at::Tensor& flat) const {
  MSLR_CHECK(flat.dim() == 1 && flat.size(0) == numel_, "parameter buffer has shape ",
             shape_str(flat.sizes()), ", its layout needs [", numel_, "]");
  std::vector<at::Tensor> v;
  v.reserve(entries_.size());
  for (int i = 0; i < size(); ++i)
    v.push_back(view(flat, i));
  return v;
}

at::Tensor ParamLayout::initial_values(uint64_t seed, uint64_t owner_key, at::ScalarType dtype) const {
  at::Tensor flat = at::empty({numel_}, at::kDouble);
  double* p = flat.data_ptr<double>();
  for (const auto& e : entries_) {
    double* q = p + e.offset;
    Rng rng(seed, {kRngInit, owner_key, hash_name(e.name)});
    switch (e.init.kind) {
      case Init::kConstant:
        for (int64_t i = 0; i < e.numel; ++i)
          q[i] = e.init.a;
        break;
      case Init::kNormal:
        for (int64_t i = 0; i < e.numel; ++i)
          q[i] = e.init.a * rng.normal();
        break;
      case Init::kIdentity:
        for (int64_t i = 0; i < e.numel; ++i)
          q[i] = 0.0;
        for (int64_t i = 0; i < std::min(e.shape[0], e.shape[1]); ++i)
          q[i * e.shape[1] + i] = 1.0;
        break;
    }
  }
  return flat.to(dtype);
}

std::string ParamLayout::difference(const ParamLayout& other) const {
  for (int i = 0; i < std::min(size(), other.size()); ++i) {
    const auto& a = entries_[i];
    const auto& b = other.entries_[i];
    if (a.name != b.name) return cat("parameter ", i, " is '", a.name, "' here and '", b.name, "' there");
    if (a.shape != b.shape)
      return cat("parameter '", a.name, "' has shape ", shape_str(a.shape), " here and ", shape_str(b.shape),
                 " there");
  }
  if (size() != other.size()) return cat(size(), " parameters here and ", other.size(), " there");
  return "";
}

bool ParamLayout::same_as(const ParamLayout& other) const {
  return difference(other).empty();
}

}  // namespace mslr
