#include "mslr/comm/communicator.h"

#include <cstring>

#include "mslr/core/error.h"

namespace mslr {

std::string Communicator::broadcast_string(const std::string& s, int root) const {
  at::Tensor n = at::tensor({static_cast<int64_t>(s.size())}, at::kLong);
  broadcast(n, root);
  at::Tensor bytes = at::zeros({n.item<int64_t>()}, at::kByte);
  if (rank() == root && !s.empty()) std::memcpy(bytes.data_ptr<uint8_t>(), s.data(), s.size());
  broadcast(bytes, root);
  return std::string(reinterpret_cast<const char*>(bytes.data_ptr<uint8_t>()), bytes.numel());
}

int64_t Communicator::sum(int64_t v) const {
  at::Tensor t = at::tensor({v}, at::kLong);
  all_reduce_sum(t);
  return t.item<int64_t>();
}

void run_collectively(const Communicator& comm, const std::function<void()>& work) {
  std::string message;
  bool failed = false;
  try {
    work();
  } catch (const std::exception& e) {
    failed = true;
    message = e.what();
  }
  // The lowest failing rank (size() when none failed) speaks for all.
  at::Tensor first = at::tensor(
      {failed ? -static_cast<int64_t>(comm.rank()) : -static_cast<int64_t>(comm.size())}, at::kLong);
  comm.all_reduce_max(first);
  const int speaker = static_cast<int>(-first.item<int64_t>());
  if (speaker == comm.size()) return;
  const std::string said = comm.broadcast_string(message, speaker);
  // A rank that failed itself reports its own error; the others report the speaker's, naming its rank.
  if (failed) throw CollectiveError(message);
  throw CollectiveError(cat("rank ", speaker, ": ", said));
}

}  // namespace mslr
