// Command-line and INI options for the subcommands, built on Boost.Program_options.
//
// Every option is declared once with its default and help text. Values come from the command line, then from
// `--config FILE` (INI; keys of a [model] section are the options "model.KEY"), then from a base config (e.g.
// the one saved in a checkpoint), then from the defaults: the first source that gives an option wins, so the
// command line always does. Values are kept as text and converted by the typed getters, which name the option
// and the value when it does not parse.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <map>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace mslr {

struct OptionDecl {
  std::string name;           // "epochs", "model.hidden"
  std::string default_value;  // "" = no default (optional)
  std::string help;
  enum Kind { kValue, kFlag, kList } kind = kValue;  // kFlag: "--quiet" means true; kList: may repeat
};

class Options {
 public:
  Options(std::string command, std::string summary, std::vector<OptionDecl> decls,
          std::vector<std::string> positional = {});

  // Parses argv (after the subcommand) and the files it names. Throws UsageError with one line naming the
  // option for unknown options, missing values, malformed INI lines. Returns false when --help was asked
  // (the help text has then been printed).
  // `base_origin` names where `base_config` came from in its errors ("d.h5: the 'model' attribute").
  bool parse(const std::vector<std::string>& args, const std::string& base_config = "",
             const std::string& base_origin = "the saved configuration");

  std::string help() const;
  bool given(const std::string& name) const;  // set by the command line or a config (not a default)
  bool has(const std::string& name) const;    // given or defaulted
  std::string str(const std::string& name) const;
  std::vector<std::string> list(const std::string& name) const;
  int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;
  bool flag(const std::string& name) const;
  // Option names with the given prefix ("model.") that were given.
  std::vector<std::string> given_with_prefix(const std::string& prefix) const;

  // The resolved configuration as INI text (top-level keys first, then one [section] per prefix), every
  // option with a value, except those marked as not belonging in a config (config, resume, help).
  std::string resolved(const std::vector<std::string>& leave_out = {"config", "resume"}) const;
  // Replaces a value (for values the program derives, e.g. predictor ranges computed from the data).
  void set(const std::string& name, const std::vector<std::string>& values);

  const std::string& command() const { return command_; }

 private:
  std::string command_, summary_;
  std::vector<OptionDecl> decls_;
  std::vector<std::string> positional_;
  std::map<std::string, std::vector<std::string>> values_;
  std::map<std::string, bool> given_;
};

// The items of a list value ("a,b,,c" split at ',' gives a, b, "", c): empty items are kept.
std::vector<std::string> split(const std::string& text, char sep);

// An option's default as text, taken from the default of the value the code fills (FitOptions{}.epochs), so
// that each default is written once: the shortest text that reads back as the same value.
template <class T>
std::string default_text(T value) {
  if constexpr (std::is_same_v<T, bool>) {
    return value ? "true" : "false";
  } else if constexpr (std::is_integral_v<T>) {
    return std::to_string(value);
  } else {
    char text[32];
    for (int digits = 1; digits <= 17; ++digits) {
      std::snprintf(text, sizeof text, "%.*g", digits, static_cast<double>(value));
      if (std::strtod(text, nullptr) == static_cast<double>(value)) break;
    }
    return text;
  }
}

// A bad command line or config: reported as one line, exit status 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace mslr
