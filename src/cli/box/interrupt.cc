#include "cli/box/interrupt.h"

#include <signal.h>

namespace boxd::cli {

namespace {

volatile sig_atomic_t g_signal = 0;

void onSignal(int sig) {
  if (g_signal != 0) {
    signal(sig, SIG_DFL);
    raise(sig);
    return;
  }
  g_signal = sig;
}

}  // namespace

void installInterruptHandler() {
  struct sigaction sa = {};
  sa.sa_handler = onSignal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking calls return EINTR and see the flag sooner
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

bool interruptRequested() { return g_signal != 0; }

int interruptExitCode() { return 128 + (g_signal ? static_cast<int>(g_signal) : SIGINT); }

}  // namespace boxd::cli
