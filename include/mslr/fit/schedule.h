// Learning-rate schedules: a number, or (epoch, lr) pairs that take effect from their epoch on.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace mslr {

class LrSchedule {
 public:
  LrSchedule() = default;
  explicit LrSchedule(double lr) : points_{{0, lr}} {}
  // Pairs sorted by epoch; the first must be at epoch 0 and every rate positive.
  explicit LrSchedule(std::vector<std::pair<int, double>> points);
  // "0:0.01,100:0.001"; throws naming the bad item.
  static LrSchedule parse(const std::string& text);

  double at(int epoch) const;
  const std::vector<std::pair<int, double>>& points() const { return points_; }
  std::string to_string() const;

 private:
  std::vector<std::pair<int, double>> points_ = {{0, 0.01}};
};

}  // namespace mslr
