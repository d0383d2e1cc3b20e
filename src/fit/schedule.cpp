#include "mslr/fit/schedule.h"

#include <cmath>

#include <sstream>

#include "mslr/core/error.h"

namespace mslr {

LrSchedule::LrSchedule(std::vector<std::pair<int, double>> points) : points_(std::move(points)) {
  MSLR_CHECK(!points_.empty() && points_[0].first == 0, "lr-schedule must start at epoch 0");
  for (size_t i = 0; i < points_.size(); ++i) {
    MSLR_CHECK(std::isfinite(points_[i].second) && points_[i].second > 0.0,
               "lr-schedule: learning rate at epoch ", points_[i].first, " must be a positive number, got ",
               points_[i].second);
    MSLR_CHECK(i == 0 || points_[i].first > points_[i - 1].first, "lr-schedule: epochs must increase, got ",
               points_[i - 1].first, " then ", points_[i].first);
  }
}

LrSchedule LrSchedule::parse(const std::string& text) {
  std::vector<std::pair<int, double>> points;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, ',')) {
    const auto colon = item.find(':');
    MSLR_CHECK(colon != std::string::npos, "lr-schedule: '", item, "' is not EPOCH:RATE");
    try {
      size_t used_e = 0, used_r = 0;
      const int e = std::stoi(item.substr(0, colon), &used_e);
      const double r = std::stod(item.substr(colon + 1), &used_r);
      MSLR_CHECK(used_e == colon && used_r == item.size() - colon - 1, "");
      points.emplace_back(e, r);
    } catch (const std::exception&) {
      fail("lr-schedule: '", item, "' is not EPOCH:RATE");
    }
  }
  MSLR_CHECK(!points.empty(), "lr-schedule is empty");
  return LrSchedule(std::move(points));
}

double LrSchedule::at(int epoch) const {
  double lr = points_[0].second;
  for (const auto& [e, r] : points_)
    if (e <= epoch) lr = r;
  return lr;
}

std::string LrSchedule::to_string() const {
  std::ostringstream os;
  os.precision(17);
  for (size_t i = 0; i < points_.size(); ++i)
    os << (i ? "," : "") << points_[i].first << ":" << points_[i].second;
  return os.str();
}

}  // namespace mslr
