// Interrupt: SIGINT and SIGTERM become a flag that long calls poll, so `box run` can delete
// its box before exiting 130 instead of dying in the middle of a request. A second signal
// while the first is being handled ends the process at once.
#pragma once

namespace boxd::cli {

void installInterruptHandler();
bool interruptRequested();
// 128 + the signal number: what a shell reports for a command killed by it.
int interruptExitCode();

}  // namespace boxd::cli
