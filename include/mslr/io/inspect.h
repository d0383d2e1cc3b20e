#pragma once

#include <string>

namespace mslr {

// A description of an mslr data, checkpoint or predictions file (by its format attribute): subjects, groups
// and sizes, epoch, log. Throws naming the file when it is none of these.
std::string describe_file(const std::string& path);

}  // namespace mslr
