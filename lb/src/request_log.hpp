#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <boost/asio/ip/tcp.hpp>

#include "access_log.hpp"
#include "lb/config.hpp"
#include "lb/request_id.hpp"

namespace lb {

// "10.0.0.1:80", "[2001:db8::1]:80" into `buf` (exchange_log.cpp), for the log's endpoint.
std::string_view endpoint_text(const boost::asio::ip::tcp::endpoint& e, char (&buf)[64]);

// What one worker's exchanges share to name and log their requests: the request ID generator,
// the worker's access log buffer (none when the log is off) and a line to format into.
struct RequestLog {
    RequestLog(const LbConfig& config, unsigned worker, std::shared_ptr<AccessLogSink> buffer)
        : ids(RequestIdGenerator::process_prefix(), worker),
          sink(config.access_log.enabled ? std::move(buffer) : nullptr) {}
    ~RequestLog() {
        if (sink) {
            sink->close();
        }
    }
    RequestLog(const RequestLog&) = delete;
    RequestLog& operator=(const RequestLog&) = delete;

    // Whether a request is logged: every error (a 5xx, an answer of the balancer's own, no
    // answer), and `percent` of the others, spread evenly (1 in 100/percent).
    bool sampled(unsigned percent, bool error) {
        if (error || percent >= 100) {
            return true;
        }
        sample_credit += percent;
        if (sample_credit >= 100) {
            sample_credit -= 100;
            return true;
        }
        return false;
    }

    // The same for a request answered `status` (0: no answer), by the balancer itself when
    // `local`: those, and 5xx, are errors.
    bool sampled(unsigned percent, unsigned status, bool local) {
        return sampled(percent, local || status == 0 || status >= 500);
    }

    RequestIdGenerator ids;
    std::shared_ptr<AccessLogSink> sink;
    std::string line;
    unsigned sample_credit = 0;
};

}  // namespace lb
