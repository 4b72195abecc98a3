#include "lb/request_id.hpp"

#include <cstring>
#include <ctime>

#include <sys/random.h>

namespace lb {

namespace {
constexpr char kHex[] = "0123456789abcdef";
}

RequestIdGenerator::RequestIdGenerator(std::uint64_t prefix, unsigned worker) {
    for (int shift = 44; shift >= 0; shift -= 4) {
        text_[text_len_++] = kHex[(prefix >> shift) & 0xf];
    }
    text_[text_len_++] = '-';
    char digits[4];
    std::size_t n = 0;
    worker %= 1000;
    do {
        digits[n++] = static_cast<char>('0' + worker % 10);
        worker /= 10;
    } while (worker != 0);
    while (n > 0) {
        text_[text_len_++] = digits[--n];
    }
    text_[text_len_++] = '-';
}

std::string_view RequestIdGenerator::next(Buffer& buffer) {
    std::memcpy(buffer.data(), text_, text_len_);
    const std::uint64_t v = ++counter_;
    char* p = buffer.data() + text_len_;
    for (int shift = 60; shift >= 0; shift -= 4) {
        *p++ = kHex[(v >> shift) & 0xf];
    }
    return {buffer.data(), static_cast<std::size_t>(p - buffer.data())};
}

std::uint64_t RequestIdGenerator::process_prefix() {
    static const std::uint64_t prefix = [] {
        std::uint64_t v = 0;
        if (::getrandom(&v, sizeof v, 0) != static_cast<ssize_t>(sizeof v)) {
            // (no getrandom: a prefix from the address space layout and the time still differs
            // between runs)
            v = reinterpret_cast<std::uintptr_t>(&v) ^ static_cast<std::uint64_t>(::time(nullptr));
        }
        return v & 0xffffffffffffULL;
    }();
    return prefix;
}

bool well_formed_request_id(std::string_view id) {
    if (id.empty() || id.size() > 128) {
        return false;
    }
    for (const char c : id) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                        (c >= '0' && c <= '9') ||
                        (c != '\0' && std::strchr("-_.:+/=@", c) != nullptr);
        if (!ok) {
            return false;
        }
    }
    return true;
}

}  // namespace lb
