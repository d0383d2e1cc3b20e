// What `mslr fit` is asked to do, resolved from its options before anything is read: the options it takes,
// and the checked settings they give. The subjects to fit are the one setting that needs the data file's
// names (subjects_from).
#pragma once

#include <set>
#include <string>
#include <vector>

#include "mslr/app/options.h"
#include "mslr/fit/fitter.h"
#include "mslr/io/checkpoint.h"

namespace mslr {

// When a fit writes checkpoints and how many periodic ones it keeps.
struct CheckpointPlan {
  int every = 10;        // epochs between periodic checkpoints (0: only the final one)
  std::set<int> epochs;  // and after these epochs
  int keep = 3;          // the newest periodic checkpoints kept (0: all)
  bool due(int completed_epochs) const {
    return (every > 0 && completed_epochs % every == 0) || epochs.count(completed_epochs) > 0;
  }
};

struct FitSettings {
  FitOptions fit;  // `subjects` left empty: see subjects_from
  CheckpointPlan checkpoints;
  ExtrasRequest copies;     // --copy-props, --copy-data
  int update_interval = 1;  // epochs between progress lines
  bool overwrite = false;
};

// The options of mslr fit, with their defaults (those of FitSettings) and help.
std::vector<OptionDecl> fit_options();
extern const char* const kFitSummary;

// Every setting but the subjects, checked; a bad value is a UsageError naming the option.
FitSettings fit_settings_from(const Options& o);

// --subjects: comma-separated names or indices of `subjects` (of the file `data_path`). A name that reads as
// the index of another subject is refused rather than guessed. Empty when the option is not given (all).
std::vector<int> subjects_from(const Options& o, const std::vector<SubjectInfo>& subjects,
                               const std::string& data_path);

}  // namespace mslr
