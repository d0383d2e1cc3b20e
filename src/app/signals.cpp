#include "mslr/app/signals.h"

#include <unistd.h>
#include <csignal>

namespace mslr {
namespace {

volatile std::sig_atomic_t g_signal = 0;

extern "C" void on_stop_signal(int sig) {
  if (g_signal != 0) {
    // Second signal: no checkpoint, leave now (async-signal-safe calls only).
    const char msg[] = "mslr: second signal, exiting without a checkpoint\n";
    (void)!::write(2, msg, sizeof msg - 1);
    ::_exit(128 + sig);
  }
  g_signal = sig;
}

}  // namespace

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGUSR1, &sa, nullptr);
}

bool stop_signalled() {
  return g_signal != 0;
}

}  // namespace mslr
