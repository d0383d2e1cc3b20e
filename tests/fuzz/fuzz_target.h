// What every fuzz target shares: the input as a file for the readers, and the rule for what may escape.
//
// A target feeds one input to one of mslr's parsers the way the program does. Bad input must end in an
// mslr::Error (or a UsageError for options): one line naming the file and the rule. Anything else escaping
// (a LibTorch error, std::bad_alloc, a standard-library range error) means an input reached code that had not
// checked it, and is reported as a finding by aborting; crashes and sanitizer reports are findings as well.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <fstream>
#include <string>

#include "mslr/app/options.h"
#include "mslr/core/error.h"
#include "mslr/io/lifetime.h"

namespace mslr::fuzz {

// The input written to this process's scratch file (in memory where /dev/shm exists); returns its path.
// The first call starts the file layer as the program does (h5::start).
inline std::string as_file(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    h5::start();
    const char* tmp = std::getenv("TMPDIR");
    const std::string dir = ::access("/dev/shm", W_OK) == 0 ? "/dev/shm" : tmp && *tmp ? tmp : "/tmp";
    return dir + "/mslr-fuzz-" + std::to_string(::getpid()) + ".h5";
  }();
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

// Prints mslr's error for each input when MSLR_FUZZ_VERBOSE is set (to see how far an input gets).
inline void note_error(const std::exception& e) {
  static const bool verbose = std::getenv("MSLR_FUZZ_VERBOSE") != nullptr;
  if (verbose) std::fprintf(stderr, "fuzz: mslr refused the input: %s\n", e.what());
}

// Runs `parse`; mslr's own errors are the expected end of bad input, anything else is a finding.
template <class F>
void expect_only_mslr_errors(F&& parse) {
  try {
    parse();
  } catch (const Error& e) {
    note_error(e);
  } catch (const UsageError& e) {
    note_error(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: an input escaped mslr's checks: %s\n", e.what());
    std::abort();
  }
}

// Runs `read(path)` on the input written as a file: the readers' way in.
template <class F>
void read_as_file(const uint8_t* data, size_t size, F&& read) {
  const std::string path = as_file(data, size);
  expect_only_mslr_errors([&] { read(path); });
}

}  // namespace mslr::fuzz
