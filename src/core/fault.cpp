#include "mslr/core/fault.h"

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "mslr/core/error.h"

namespace mslr {
namespace {

struct FaultPlan {
  int rank = -1;
  std::string where;  // "step", "checkpoint", "output" or "latest"
  int64_t count = -1;
  std::string kind = "throw";
  int64_t calls = 0;  // calls at `where` so far
};

FaultPlan read_plan() {
  FaultPlan p;
  const char* env = std::getenv("MSLR_FAULT");
  if (!env || !*env) return p;
  std::string text = env;
  size_t start = 0;
  while (start <= text.size()) {
    const size_t comma = text.find(',', start);
    const std::string item =
        text.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    const size_t colon = item.find(':');
    const std::string key = item.substr(0, colon),
                      value = colon == std::string::npos ? "" : item.substr(colon + 1);
    if (key == "rank") p.rank = std::atoi(value.c_str());
    if (key == "step" || key == "checkpoint" || key == "output" || key == "latest") {
      p.where = key;
      p.count = std::atoll(value.c_str());
    }
    if (key == "kind") p.kind = value;
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return p;
}

}  // namespace

void fault_point(const char* where, int rank) {
  static FaultPlan plan = read_plan();
  if (plan.rank < 0 || rank != plan.rank || plan.where != where) return;
  const int64_t n = ++plan.calls;
  if (n != plan.count) return;
  if (plan.kind == "abort") std::abort();
  if (plan.kind == "exit") std::_Exit(7);
  throw std::runtime_error(cat("injected fault (MSLR_FAULT) at ", where, " ", n));
}

}  // namespace mslr
