#include "mslr/io/inspect.h"

#include <cstdio>

#include "h5.h"
#include "mslr/core/error.h"
#include "mslr/model/params.h"

namespace mslr {
namespace {

std::string describe_data(const h5::File& f) {
  std::string out = "mslr-data v" + std::to_string(f.attr_int("version")) + "\n";
  const h5::Location subjects = f.group("subjects");
  const auto names = subjects.children();
  out += std::to_string(names.size()) + " subjects\n";
  for (const auto& n : names) {
    const h5::Location s = subjects.group(n);
    out += "  " + n + ":";
    for (const auto& g : s.group("groups").children())
      out += " " + g + " " + shape_str(s.group("groups").shape(g));
    if (s.exists("props"))
      for (const auto& g : s.group("props").children())
        out += ", props/" + g + " " + shape_str(s.group("props").shape(g));
    if (s.exists("segments")) out += ", " + std::to_string(s.shape("segments")[0]) + " segments";
    if (s.exists("truth")) out += ", truth";
    out += "\n";
  }
  if (f.has_attr("model")) out += "generating model:\n" + f.attr_string("model");
  return out;
}

std::string describe_checkpoint(const h5::File& f) {
  char line[256];
  std::snprintf(line, sizeof line,
                "mslr-checkpoint v%lld: epoch %lld, minibatch %lld, written by %lld rank(s), %s\n",
                (long long)f.attr_int("version"), (long long)f.attr_int("epoch"),
                (long long)f.attr_int("batch"), (long long)f.attr_int("world_size"),
                f.has_attr("complete") && f.attr_int("complete") == 1 ? "complete" : "INCOMPLETE");
  std::string out = line;
  out += "shared parameters: " + std::to_string(f.shape("shared/params")[0]) + "\n";
  const h5::Location subjects = f.group("subjects");
  const auto names = subjects.children();
  out += std::to_string(names.size()) + " subjects\n";
  for (const auto& n : names) {
    const h5::Location s = subjects.group(n);
    out += "  " + n + ": " + std::to_string(s.shape("params")[0]) + " parameters" +
           (s.attr_int("fitted") ? "" : " (not fitted)");
    if (s.exists("modes"))
      for (const auto& m : s.group("modes").children())
        out += ", modes/" + m + " " + shape_str(s.group("modes").shape(m));
    out += "\n";
  }
  const auto entries = f.shape("log/objective")[0];
  if (entries > 0) {
    const at::Tensor obj = f.read("log/objective", at::kDouble);
    std::snprintf(line, sizeof line, "log: %lld epochs, objective %.6g -> %.6g\n", (long long)entries,
                  obj[0].item<double>(), obj[entries - 1].item<double>());
    out += line;
  }
  out += "config:\n" + f.attr_string("config");
  return out;
}

std::string describe_predictions(const h5::File& f) {
  std::string out = "mslr-predictions from " + f.attr_string("checkpoint") + " on " + f.attr_string("data") +
                    ", " + f.attr_string("split") + "\n";
  const h5::Location subjects = f.group("subjects");
  for (const auto& n : subjects.children()) {
    const h5::Location s = subjects.group(n);
    out += "  " + n + ": " + std::to_string(s.attr_int("samples")) + " samples" +
           (s.attr_int("in_fit") ? "" : " (not in the fit)");
    for (const auto& g : s.children())
      if (g != "times" && g != "nll") out += ", " + g + " " + shape_str(s.shape(g));
    out += "\n";
  }
  return out;
}

// Generated series and latents: per subject, its arrays (one level of folders) and their shapes.
std::string describe_subject_arrays(const h5::File& f, const std::string& format) {
  std::string out = format + " from " + f.attr_string("checkpoint") + " on " + f.attr_string("data") + "\n";
  const h5::Location subjects = f.group("subjects");
  for (const auto& n : subjects.children()) {
    const h5::Location s = subjects.group(n);
    out += "  " + n + ":";
    for (const char* a : {"start", "steps"})
      if (s.has_attr(a)) out += cat(" ", a, " ", s.attr_int(a), ",");
    std::string arrays;
    for (const auto& c : s.children()) {
      if (s.info(c).kind != h5::ObjectInfo::kGroup) {
        arrays += (arrays.empty() ? " " : ", ") + c + " " + shape_str(s.shape(c));
        continue;
      }
      for (const auto& g : s.group(c).children())
        arrays += (arrays.empty() ? " " : ", ") + c + "/" + g + " " + shape_str(s.group(c).shape(g));
    }
    out += arrays + (s.has_attr("in_fit") && !s.attr_int("in_fit") ? " (not in the fit)" : "") + "\n";
  }
  return out;
}

}  // namespace

std::string describe_file(const std::string& path) {
  h5::File f(path, h5::File::kRead);
  const std::string format = f.has_attr("format") ? f.attr_string("format") : "";
  if (format == "mslr-data") return describe_data(f);
  if (format == "mslr-checkpoint") return describe_checkpoint(f);
  if (format == "mslr-predictions") return describe_predictions(f);
  if (format == "mslr-generated" || format == "mslr-latents") return describe_subject_arrays(f, format);
  fail(path, ": not an mslr file (format attribute '", format, "')");
}

}  // namespace mslr
