#include "mslr/core/json.h"

#include <cmath>
#include <limits>

#include "test_util.h"

namespace mslr {
namespace {

TEST(Json, StringsAreEscapedAndNonFiniteNumbersAreNull) {
  EXPECT_EQ(json_string("fish \"A\"\\b\nc\td\x01"), "\"fish \\\"A\\\"\\\\b\\nc\\td\\u0001\"");
  EXPECT_EQ(json_number(std::nan("")), "null");
  EXPECT_EQ(json_number(-std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(json_number(0.1), "0.1");  // the shortest form that reads back exactly
  EXPECT_EQ(std::stod(json_number(1.0 / 3.0)), 1.0 / 3.0);
  EXPECT_EQ(json_number(123.456789, 4), "123.5");
  EXPECT_EQ(
      JsonObject().add("a\"", 1).add("b", std::string("x\\y")).add("c", NAN).add("d", JsonObject()).str(),
      "{\"a\\\"\": 1, \"b\": \"x\\\\y\", \"c\": null, \"d\": {}}");
}

}  // namespace
}  // namespace mslr
