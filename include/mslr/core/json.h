// The one JSON writer behind mslr's machine-readable output (metrics.jsonl, eval --json): strings are
// escaped (quotes, backslashes, control characters), and a number that is not finite is written as null,
// since JSON has no NaN or infinity.
#pragma once

#include <cstdint>
#include <string>

namespace mslr {

std::string json_string(const std::string& s);                   // "..." with escapes
std::string json_number(double v, int significant_digits = 17);  // shortest form that round-trips, or null

// Builds one object, members in the order added: JsonObject().add("a", 1).add("b", "x").str().
class JsonObject {
 public:
  JsonObject& add(const std::string& key, double value, int significant_digits = 17);
  JsonObject& add(const std::string& key, int64_t value);
  JsonObject& add(const std::string& key, int value) { return add(key, static_cast<int64_t>(value)); }
  JsonObject& add(const std::string& key, const std::string& value);
  JsonObject& add(const std::string& key, const JsonObject& value);
  std::string str() const { return body_.empty() ? "{}" : "{" + body_ + "}"; }

 private:
  JsonObject& member(const std::string& key, const std::string& json);
  std::string body_;
};

}  // namespace mslr
