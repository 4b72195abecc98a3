#pragma once

namespace support {

// A connected loopback TCP pair, for tests of code that works on sockets directly: `client`
// (connected, blocking) and `server` (accepted, non-blocking). The caller closes both; -1 when
// the loopback interface refused (the test's expectations have failed then).
struct LoopbackTcp {
    int client = -1;
    int server = -1;
};
LoopbackTcp loopback_tcp();

}  // namespace support
