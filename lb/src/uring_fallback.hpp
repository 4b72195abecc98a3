#pragma once

namespace lb {

// tandem-lb-uring's first step (the TANDEM_LB_IO_URING build: Asio's reactor on io_uring). When
// the kernel will not give this process an io_uring of the size Asio asks for — a kernel without
// it, kernel.io_uring_disabled, a container's seccomp profile refusing io_uring_setup (EPERM,
// ENOSYS), a memory limit — or TANDEM_LB_EPOLL=1 is set, this process is replaced by the epoll
// build installed next to it (`tandem-lb`, same arguments), after one line on stderr saying
// why. Returns only when io_uring works. Exits 1 with the reason when it does not and there is
// no epoll build to run.
void use_io_uring_or_epoll_build(char** argv);

}  // namespace lb
