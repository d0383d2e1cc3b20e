#include "mslr/model/params.h"

#include "test_util.h"

namespace mslr {
namespace {

TEST(ParamLayout, OffsetsFollowDeclarationOrder) {
  ParamLayout l;
  EXPECT_EQ(l.add("a", {2, 3}, Init::constant(1.0)), 0);
  EXPECT_EQ(l.add("b", {4}, Init::constant(2.0)), 1);
  EXPECT_EQ(l.add("c", {}, Init::constant(3.0)), 2);
  EXPECT_EQ(l.numel(), 11);
  EXPECT_EQ(l[1].offset, 6);
  EXPECT_EQ(l[2].offset, 10);
  EXPECT_EQ(l.index_of("b"), 1);
  EXPECT_NE(test::error_of([&] { l.index_of("zz"); }).find("no parameter named 'zz'"), std::string::npos);
  EXPECT_NE(test::error_of([&] { l.add("a", {1}, Init::constant(0)); }).find("'a' declared twice"),
            std::string::npos);
}

TEST(ParamLayout, ViewsShareTheFlatBufferAndItsGradient) {
  ParamLayout l;
  l.add("w", {2, 2}, Init::identity());
  l.add("v", {3}, Init::constant(0.5));
  at::Tensor flat = l.initial_values(0, 0, at::kDouble).requires_grad_();
  EXPECT_TRUE(at::equal(flat.detach(), at::tensor({1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.5}, at::kDouble)));
  auto v = l.views(flat);
  (v[0].sum() * 2.0 + (v[1] * v[1]).sum()).backward();
  // The gradient of every parameter lands in one contiguous buffer, in layout order.
  EXPECT_TRUE(at::allclose(flat.grad(), at::tensor({2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 1.0}, at::kDouble)));
}

TEST(ParamLayout, RandomStartDependsOnSeedOwnerAndNameOnly) {
  ParamLayout a, b;
  a.add("x", {5}, Init::normal(1.0));
  a.add("y", {4}, Init::normal(2.0));
  b.add("y", {4}, Init::normal(2.0));  // same name in another position: same values
  const at::Tensor fa = a.initial_values(3, 9, at::kDouble);
  const at::Tensor fb = b.initial_values(3, 9, at::kDouble);
  EXPECT_TRUE(at::equal(fa.narrow(0, 5, 4), fb));
  EXPECT_FALSE(at::equal(fa, a.initial_values(4, 9, at::kDouble)));
  EXPECT_FALSE(at::equal(fa, a.initial_values(3, 8, at::kDouble)));
  EXPECT_TRUE(at::equal(fa, a.initial_values(3, 9, at::kDouble)));
  // The draws have the requested spread.
  ParamLayout big;
  big.add("z", {20000}, Init::normal(2.0));
  EXPECT_NEAR(big.initial_values(1, 1, at::kDouble).std().item<double>(), 2.0, 0.05);
}

TEST(ParamLayout, DifferenceNamesTheFirstMismatch) {
  ParamLayout a, b;
  a.add("x", {2}, Init::constant(0));
  b.add("x", {3}, Init::constant(0));
  EXPECT_EQ(a.difference(b), "parameter 'x' has shape [2] here and [3] there");
  EXPECT_TRUE(a.same_as(a));
  EXPECT_FALSE(a.same_as(b));
}

}  // namespace
}  // namespace mslr
