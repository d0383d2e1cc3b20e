// The parameter inventory: every set of parameters (the shared one, or one subject's) lives in ONE contiguous
// flat tensor, and the model reads it through named views. The fitter all-reduces the shared flat gradient in
// one call and steps Adam on whole flat buffers; a checkpoint writes each flat buffer as a whole.
#pragma once

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace mslr {

// How a parameter starts. Random draws come from a stream keyed by (seed, owner key, parameter name), so
// adding a parameter never changes how the others start.
struct Init {
  enum Kind { kConstant, kNormal, kIdentity } kind = kConstant;
  double a = 0.0;  // constant value or normal std

  static Init constant(double v) { return {kConstant, v}; }
  static Init normal(double std) { return {kNormal, std}; }
  static Init identity() { return {kIdentity, 0.0}; }  // 2-D: ones on the diagonal
};

struct ParamEntry {
  std::string name;
  std::vector<int64_t> shape;
  int64_t offset = 0;  // into the flat buffer, in elements
  int64_t numel = 0;
  Init init;
};

class ParamLayout {
 public:
  // Appends a parameter; returns its index. Names must be unique within a layout.
  int add(const std::string& name, std::vector<int64_t> shape, Init init);

  int size() const { return static_cast<int>(entries_.size()); }
  int64_t numel() const { return numel_; }
  const ParamEntry& operator[](int i) const { return entries_[i]; }
  const std::vector<ParamEntry>& entries() const { return entries_; }
  // Index of a named parameter; throws naming it when absent.
  int index_of(const std::string& name) const;
  bool contains(const std::string& name) const;

  // Views of every parameter into `flat` [numel], in layout order. Views of a flat tensor that requires grad
  // carry their gradient back into flat.grad(): that is how the gradient arrives in one contiguous buffer.
  std::vector<at::Tensor> views(const at::Tensor& flat) const;
  at::Tensor view(const at::Tensor& flat, int i) const;

  // A fresh flat buffer [numel] of `dtype` on the CPU with every parameter at its initial value.
  at::Tensor initial_values(uint64_t seed, uint64_t owner_key, at::ScalarType dtype) const;

  // True when both layouts have the same names and shapes in the same order.
  bool same_as(const ParamLayout& other) const;
  // A one-line description of the first difference from `other` ("" when the same), for error messages.
  std::string difference(const ParamLayout& other) const;

 private:
  std::vector<ParamEntry> entries_;
  int64_t numel_ = 0;
};

std::string shape_str(at::IntArrayRef shape);

}  // namespace mslr
