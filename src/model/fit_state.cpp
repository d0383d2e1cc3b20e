#include "mslr/model/fit_state.h"

namespace mslr {

const SubjectState* FitState::find(int index) const {
  for (const auto& s : subjects)
    if (s.index == index) return &s;
  return nullptr;
}

}  // namespace mslr
