#include "mslr/core/json.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace mslr {

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

std::string json_number(double v, int significant_digits) {
  if (!std::isfinite(v)) return "null";
  char buf[64];
  // The fewest digits (up to the limit) that read back as the same double.
  for (int p = std::min(significant_digits, 15); p <= significant_digits; ++p) {
    std::snprintf(buf, sizeof buf, "%.*g", p, v);
    if (p == significant_digits || std::strtod(buf, nullptr) == v) break;
  }
  return buf;
}

JsonObject& JsonObject::member(const std::string& key, const std::string& json) {
  body_ += (body_.empty() ? "" : ", ") + json_string(key) + ": " + json;
  return *this;
}

JsonObject& JsonObject::add(const std::string& key, double value, int significant_digits) {
  return member(key, json_number(value, significant_digits));
}

JsonObject& JsonObject::add(const std::string& key, int64_t value) {
  return member(key, std::to_string(value));
}

JsonObject& JsonObject::add(const std::string& key, const std::string& value) {
  return member(key, json_string(value));
}

JsonObject& JsonObject::add(const std::string& key, const JsonObject& value) {
  return member(key, value.str());
}

}  // namespace mslr
