#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace lb {

// Request IDs, cheap and unique per process run: a random prefix drawn once at startup (48
// bits from the kernel's CSPRNG), the worker and a per-worker counter — no syscall and no
// lock per request. "5f0c1a9e4b27-1-00000000002a": 12 + 1 + up to 3 + 1 + 16 characters.
class RequestIdGenerator {
public:
    static constexpr std::size_t kMaxLength = 40;
    using Buffer = std::array<char, kMaxLength>;

    // `prefix`: the process's random prefix (process_prefix()); `worker`: the worker's index.
    RequestIdGenerator(std::uint64_t prefix, unsigned worker);
    // The next ID, written into `buffer`.
    std::string_view next(Buffer& buffer);

    // 48 random bits for this process (getrandom); the same value for every call.
    static std::uint64_t process_prefix();

private:
    char text_[20]{};  // "5f0c1a9e4b27-1-"
    std::size_t text_len_ = 0;
    std::uint64_t counter_ = 0;
};

// Whether a client's request ID can be kept: 1 to 128 characters of letters, digits and
// "-_.:+/=@" (a UUID, a W3C trace id, base64) — nothing that could break a header or a log line.
bool well_formed_request_id(std::string_view id);

}  // namespace lb
