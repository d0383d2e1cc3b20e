// Errors that reach the user: one line naming the file, subject, group or option, the value and the rule.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace mslr {

// Everything mslr throws on bad input or a failed library call.
class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Concatenates the streamable parts into one message.
template <class... Parts>
std::string cat(const Parts&... parts) {
  std::ostringstream os;
  (os << ... << parts);
  return os.str();
}

// An error every rank of the job has thrown together (see run_collectively): the program can exit cleanly
// instead of aborting the job.
class CollectiveError : public Error {
 public:
  using Error::Error;
};

// The fit diverged: a non-finite NLL or gradient on some rank. Every rank throws it at the same step, before
// anything non-finite is logged or checkpointed.
class DivergedError : public CollectiveError {
 public:
  using CollectiveError::CollectiveError;
};

template <class... Parts>
[[noreturn]] void fail(const Parts&... parts) {
  throw Error(cat(parts...));
}

}  // namespace mslr

// Input checks that survive NDEBUG; the message parts are only built when the check fails.
#define MSLR_CHECK(cond, ...)               \
  do {                                      \
    if (!(cond)) ::mslr::fail(__VA_ARGS__); \
  } while (0)
