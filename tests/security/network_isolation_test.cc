// Attacks on the network boundary: reaching services the host listens on (TCP/UDP on
// loopback and on its own address, abstract and path unix sockets), crafting raw packets,
// and finding any interface besides the box's own loopback.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <string>

#include "common/unique_fd.h"
#include "security/attack_fixture.h"

namespace boxd::testing {
namespace {

using std::chrono::seconds;
using NetworkIsolationTest = SecurityTest;

// The first non-loopback IPv4 address of an up interface, or "" if the host has none.
std::string hostIpv4() {
  ifaddrs* ifs = nullptr;
  if (::getifaddrs(&ifs) != 0) return "";
  std::string out;
  for (ifaddrs* i = ifs; i && out.empty(); i = i->ifa_next) {
    if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET) continue;
    if ((i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP)) continue;
    char buf[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, buf,
                sizeof(buf));
    out = buf;
  }
  ::freeifaddrs(ifs);
  return out;
}

// A non-blocking socket of `type` bound to 0.0.0.0 on an ephemeral port; listening if TCP.
UniqueFd hostInetSocket(int type, uint16_t* port) {
  UniqueFd fd(::socket(AF_INET, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return fd;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  socklen_t len = sizeof(a);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return UniqueFd();
  if (type == SOCK_STREAM && ::listen(fd.get(), 16) != 0) return UniqueFd();
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&a), &len) != 0) return UniqueFd();
  *port = ntohs(a.sin_port);
  return fd;
}

// A listening non-blocking unix socket at `path` (a leading '@' means abstract).
UniqueFd hostUnixListener(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return fd;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::memcpy(a.sun_path, path.data(), path.size());
  if (path[0] == '@') a.sun_path[0] = '\0';
  socklen_t len = offsetof(sockaddr_un, sun_path) + path.size();
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), len) != 0) return UniqueFd();
  if (::listen(fd.get(), 16) != 0) return UniqueFd();
  return fd;
}

// errno of a non-blocking accept/recv on the host socket: EAGAIN means nothing arrived.
std::string pendingOn(int fd, bool stream) {
  char b[64];
  int rc = stream ? ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC)
                  : static_cast<int>(::recv(fd, b, sizeof(b), MSG_DONTWAIT));
  if (rc >= 0) {
    if (stream) ::close(rc);
    return "something arrived";
  }
  return errno == EAGAIN || errno == EWOULDBLOCK ? "EAGAIN" : std::strerror(errno);
}

TEST_F(NetworkIsolationTest, ConnectToHostListenerFails) {
  uint16_t tcp_port = 0, udp_port = 0;
  UniqueFd tcp = hostInetSocket(SOCK_STREAM, &tcp_port);
  UniqueFd udp = hostInetSocket(SOCK_DGRAM, &udp_port);
  ASSERT_TRUE(tcp.valid() && udp.valid()) << std::strerror(errno);
  std::string host_ip = hostIpv4();
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, "TCP, UDP, HOST_IP = " + std::to_string(tcp_port) + ", " +
                        std::to_string(udp_port) + ", '" + host_ip + "'" + R"PY(
import socket
def tcp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect((addr, TCP))
        return "CONNECTED"
    except socket.timeout:
        return "TIMEOUT"
    except OSError as ex:
        return ename(ex.errno)
def udp(addr):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    return tryos(s.sendto, b"boxd-sec", (addr, UDP))
report("tcp_loopback", tcp("127.0.0.1"))
udp("127.0.0.1")
if HOST_IP:
    report("tcp_host_ip", tcp(HOST_IP))
    report("udp_host_ip", udp(HOST_IP))
)PY");
  auto rep = parseReport(r.stdout_data);
  // The box's 127.0.0.1 is its own loopback, where nothing listens.
  EXPECT_TRUE(rep["tcp_loopback"] == "ECONNREFUSED" || rep["tcp_loopback"] == "ENETUNREACH")
      << describe(r);
  if (!host_ip.empty()) {
    EXPECT_TRUE(rep["tcp_host_ip"] == "ENETUNREACH" || rep["tcp_host_ip"] == "EHOSTUNREACH")
        << host_ip << "\n" << describe(r);
    EXPECT_TRUE(rep["udp_host_ip"] == "ENETUNREACH" || rep["udp_host_ip"] == "EHOSTUNREACH")
        << host_ip << "\n" << describe(r);
  }
  // The attempts have finished; anything that reached the host would be queued by now.
  EXPECT_EQ(pendingOn(tcp.get(), true), "EAGAIN");
  EXPECT_EQ(pendingOn(udp.get(), false), "EAGAIN");
}

TEST_F(NetworkIsolationTest, ConnectToHostUnixSocketsFails) {
  std::string name = "@boxd-sec-" + std::to_string(::getpid());
  UniqueFd abstract_sock = hostUnixListener(name);
  ASSERT_TRUE(abstract_sock.valid()) << std::strerror(errno);
  std::string dir = makeTempDir("boxd-sec-unix");
  std::string path = dir + "/sock";
  UniqueFd path_sock = hostUnixListener(path);
  ASSERT_TRUE(path_sock.valid()) << std::strerror(errno);
  auto box = newBox();
  engine::ExecResult r;
  if (box) {
    r = py(*box, "ABSTRACT, PATH = '" + name.substr(1) + "', '" + path + "'" + R"PY(
import socket
def unix(addr):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    return tryos(s.connect, addr)
report("abstract", unix("\0" + ABSTRACT))
report("path", unix(PATH))
)PY");
  }
  ::unlink(path.c_str());
  ::rmdir(dir.c_str());
  ASSERT_TRUE(box);
  auto rep = parseReport(r.stdout_data);
  // Abstract unix sockets belong to the network namespace.
  EXPECT_EQ(rep["abstract"], "ECONNREFUSED") << describe(r);
  EXPECT_EQ(rep["path"], "ENOENT") << describe(r);
  EXPECT_EQ(pendingOn(abstract_sock.get(), true), "EAGAIN");
  EXPECT_EQ(pendingOn(path_sock.get(), true), "EAGAIN");
}

TEST_F(NetworkIsolationTest, RawAndPacketSocketsAreEperm) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto r = py(*box, R"PY(
import socket
def sock(*a):
    try:
        socket.socket(*a).close()
        return "OK"
    except OSError as ex:
        return ename(ex.errno)
report("raw_icmp", sock(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP))
report("raw_tcp", sock(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP))
report("raw_ipv6", sock(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6))
report("packet", sock(socket.AF_PACKET, socket.SOCK_RAW, 0x0300))
report("packet_dgram", sock(socket.AF_PACKET, socket.SOCK_DGRAM, 0x0300))
)PY");
  auto rep = parseReport(r.stdout_data);
  for (const char* k : {"raw_icmp", "raw_tcp", "raw_ipv6", "packet", "packet_dgram"}) {
    EXPECT_EQ(rep[k], "EPERM") << k << "\n" << describe(r);
  }
}

TEST_F(NetworkIsolationTest, OnlyLoopbackInterfaceExists) {
  auto box = newBox();
  ASSERT_TRUE(box);
  auto ip = sh(*box, "ip -o link show", seconds(10));
  EXPECT_EQ(ip.exit_code, 0) << describe(ip);
  EXPECT_EQ(std::count(ip.stdout_data.begin(), ip.stdout_data.end(), '\n'), 1) << describe(ip);
  EXPECT_NE(ip.stdout_data.find(": lo:"), std::string::npos) << describe(ip);

  auto r = py(*box, R"PY(
import socket
report("if_names", ",".join(n for _, n in socket.if_nameindex()))
devs = [l.split(":")[0].strip() for l in open("/proc/net/dev").read().splitlines()[2:]]
report("proc_net_dev", ",".join(devs))
routes = open("/proc/net/route").read().splitlines()[1:]
report("routes", len(routes))
)PY");
  auto rep = parseReport(r.stdout_data);
  EXPECT_EQ(rep["if_names"], "lo") << describe(r);
  EXPECT_EQ(rep["proc_net_dev"], "lo") << describe(r);
  EXPECT_EQ(rep["routes"], "0") << "no route leads out of the box\n" << describe(r);

  // Creating an interface needs CAP_NET_ADMIN in the box's network namespace.
  auto add = sh(*box, "ip link add boxd-evil type dummy; echo rc=$?", seconds(10));
  EXPECT_NE(parseReport(add.stdout_data)["rc"], "0") << describe(add);
  EXPECT_NE(add.stderr_data.find("Operation not permitted"), std::string::npos) << describe(add);
}

}  // namespace
}  // namespace boxd::testing
