#include "mslr/app/options.h"

#include <boost/program_options.hpp>

#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "mslr/core/error.h"

namespace po = boost::program_options;

namespace mslr {
namespace {

po::options_description describe(const std::vector<OptionDecl>& decls, bool with_help) {
  po::options_description d;
  for (const auto& o : decls) {
    if (o.kind == OptionDecl::kList)
      d.add_options()(o.name.c_str(), po::value<std::vector<std::string>>(), o.help.c_str());
    else if (o.kind == OptionDecl::kFlag)
      d.add_options()(o.name.c_str(), po::value<std::string>()->implicit_value("true"), o.help.c_str());
    else
      d.add_options()(o.name.c_str(), po::value<std::string>(), o.help.c_str());
  }
  if (with_help) d.add_options()("help,h", "show this help");
  return d;
}

// Boost's messages say "option '--x'"; mslr's say it once and point at --help.
[[noreturn]] void usage(const std::string& command, const std::string& what) {
  throw UsageError("mslr " + command + ": " + what + " (see mslr " + command + " --help)");
}

}  // namespace

Options::Options(std::string command, std::string summary, std::vector<OptionDecl> decls,
                 std::vector<std::string> positional)
    : command_(std::move(command)),
      summary_(std::move(summary)),
      decls_(std::move(decls)),
      positional_(std::move(positional)) {}

bool Options::parse(const std::vector<std::string>& args, const std::string& base_config,
                    const std::string& base_origin) {
  const po::options_description desc = describe(decls_, true);
  po::positional_options_description pos;
  for (const auto& p : positional_)
    pos.add(p.c_str(), 1);
  po::variables_map vm;
  try {
    // No abbreviations: "--epoch" is an error, not "--epochs".
    const int style = po::command_line_style::default_style & ~po::command_line_style::allow_guessing;
    po::store(po::command_line_parser(args).options(desc).positional(pos).style(style).run(), vm);
    if (vm.count("help")) {
      std::printf("%s", help().c_str());
      return false;
    }
    if (vm.count("config")) {
      const std::string path = vm["config"].as<std::string>();
      struct stat st;
      if (::stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode))
        usage(command_, "--config " + path + ": is not a file");
      std::ifstream in(path);
      if (!in) usage(command_, "--config " + path + ": cannot read the file");
      try {
        po::store(po::parse_config_file(in, describe(decls_, false)), vm);
      } catch (const po::error& e) {
        usage(command_, "config file '" + path + "': " + e.what());
      }
    }
    if (!base_config.empty()) {
      std::istringstream in(base_config);
      try {
        po::store(po::parse_config_file(in, describe(decls_, false), /*allow_unregistered=*/true), vm);
      } catch (const po::error& e) {
        usage(command_, base_origin + ": " + e.what());
      }
    }
  } catch (const po::error& e) {
    usage(command_, e.what());
  }
  for (const auto& o : decls_) {
    if (vm.count(o.name)) {
      given_[o.name] = true;
      if (o.kind == OptionDecl::kList)
        values_[o.name] = vm[o.name].as<std::vector<std::string>>();
      else
        values_[o.name] = {vm[o.name].as<std::string>()};
    } else if (!o.default_value.empty()) {
      values_[o.name] = {o.default_value};
    }
  }
  for (const auto& p : positional_)
    if (!has(p)) usage(command_, "missing argument " + p);
  return true;
}

std::string Options::help() const {
  std::ostringstream os;
  os << "usage: mslr " << command_;
  for (const auto& p : positional_)
    os << " " << p;
  os << " [options]\n\n"
     << summary_ << "\n\noptions (name, default, meaning; also in a --config INI file):\n";
  for (const auto& o : decls_) {
    if (std::find(positional_.begin(), positional_.end(), o.name) != positional_.end()) continue;
    std::string left = "  --" + o.name + (o.kind == OptionDecl::kFlag ? "" : " ARG");
    if (!o.default_value.empty()) left += "  [" + o.default_value + "]";
    os << left;
    if (left.size() < 40)
      os << std::string(40 - left.size(), ' ');
    else
      os << "\n" << std::string(40, ' ');
    os << o.help << (o.kind == OptionDecl::kList ? " (may repeat)" : "") << "\n";
  }
  os << "  --help                                show this help\n";
  return os.str();
}

bool Options::given(const std::string& name) const {
  return given_.count(name) > 0;
}
bool Options::has(const std::string& name) const {
  return values_.count(name) > 0;
}

std::string Options::str(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end() || it->second.empty()) usage(command_, "--" + name + " is required");
  return it->second.back();
}

std::vector<std::string> Options::list(const std::string& name) const {
  auto it = values_.find(name);
  return it == values_.end() ? std::vector<std::string>{} : it->second;
}

int64_t Options::integer(const std::string& name) const {
  const std::string v = str(name);
  try {
    size_t used = 0;
    const long long x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  usage(command_, "--" + name + ": '" + v + "' is not an integer");
}

double Options::number(const std::string& name) const {
  const std::string v = str(name);
  try {
    size_t used = 0;
    const double x = std::stod(v, &used);
    if (used == v.size() && std::isfinite(x)) return x;
  } catch (const std::exception&) {
  }
  usage(command_, "--" + name + ": '" + v + "' is not a finite number");
}

bool Options::flag(const std::string& name) const {
  if (!has(name)) return false;
  const std::string v = str(name);
  if (v == "true" || v == "1" || v == "yes" || v == "on") return true;
  if (v == "false" || v == "0" || v == "no" || v == "off") return false;
  usage(command_, "--" + name + ": '" + v + "' is not true or false");
}

std::vector<std::string> Options::given_with_prefix(const std::string& prefix) const {
  std::vector<std::string> out;
  for (const auto& [name, g] : given_)
    if (name.rfind(prefix, 0) == 0) out.push_back(name);
  return out;
}

void Options::set(const std::string& name, const std::vector<std::string>& values) {
  values_[name] = values;
  given_[name] = true;
}

std::string Options::resolved(const std::vector<std::string>& leave_out) const {
  std::map<std::string, std::string> sections;  // "" = top level
  for (const auto& o : decls_) {
    if (std::find(leave_out.begin(), leave_out.end(), o.name) != leave_out.end() || !has(o.name)) continue;
    const auto dot = o.name.find('.');
    const std::string section = dot == std::string::npos ? "" : o.name.substr(0, dot);
    const std::string key = dot == std::string::npos ? o.name : o.name.substr(dot + 1);
    for (const auto& v : values_.at(o.name))
      sections[section] += key + " = " + v + "\n";
  }
  std::string out = sections[""];
  for (const auto& [section, body] : sections)
    if (!section.empty()) out += "\n[" + section + "]\n" + body;
  return out;
}

std::vector<std::string> split(const std::string& text, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string item;
  while (std::getline(ss, item, sep))
    out.push_back(item);
  return out;
}

}  // namespace mslr
