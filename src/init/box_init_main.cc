// box-init: PID 1 of a local box. Started only by the engine, with the control socket on
// fd 3; it refuses to run otherwise.
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "init/box_init.h"

int main(int argc, char** argv) {
  (void)argv;
  struct stat st;
  int type = 0;
  socklen_t len = sizeof type;
  if (argc != 1 || ::getpid() != 1 || ::fstat(3, &st) != 0 || !S_ISSOCK(st.st_mode) ||
      ::getsockopt(3, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_SEQPACKET) {
    std::fprintf(stderr, "box-init: runs only as PID 1 of a box started by the boxd engine\n");
    return 2;
  }
  return boxd::init::BoxInit(3).run();
}
