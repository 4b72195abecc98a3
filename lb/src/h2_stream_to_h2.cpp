// An HTTP/2 client's stream to an h2 cluster: a stream there too (forward_h2), the request's
// fields, body and trailers passed on as they come, the response's likewise — gRPC end to end.
// Errors are values; nothing here throws on purpose.
#include "h2_exchange.hpp"
#include "h2_heads.hpp"

namespace lb {

using namespace h2x;  // NOLINT(google-build-using-namespace): this file's own class

Task<void> H2Exchange::via_h2() {
    H2Forward f;
    bool te_trailers = false;
    std::string_view content_type;
    for (const auto& field : s_.head.fields) {
        te_trailers = te_trailers || (field.name == "te" && field.value == "trailers");
        if (field.name == "content-type") {
            content_type = field.value;
        }
    }
    // (:scheme as X-Forwarded-Proto: how the client reached the balancer)
    const std::string_view scheme =
        c_.tls.empty() ? std::string_view(cx_.config.forwarded_proto) : "https";
    f.head = h2_request_head(head_, scheme, te_trailers, !has_body_);
    f.has_body = has_body_;
    f.idempotent = idempotent_;
    f.grpc = is_grpc(content_type);
    f.route = route_;
    f.protocol = Protocol::kH2;
    f.started = started_;
    co_await forward_h2(cx_, at_, c_.client, f, *this);
    if (reply_status_ == 0) {
        status_ = f.status;
        if (failure_.empty()) {
            failure_ = f.failure;
        }
    }
}

Task<std::optional<H2Origin::Piece>> H2Exchange::body() {
    const auto& to = cx_.config.timeouts;
    const auto& limits = cx_.config.limits;
    const Clock::time_point body_start = coarse_now();
    for (;;) {
        if (stop_body_ || stopped()) {
            co_return std::nullopt;
        }
        if (!s_.body.empty() || s_.ended) {
            piece_ = std::move(s_.body);
            s_.body.clear();
            body_in_ += piece_.size();
            if (body_in_ > limits.max_body_bytes) {
                c_.consume(id_, piece_.size());
                const std::string why =
                    "content too large (limit " + std::to_string(limits.max_body_bytes) + " bytes)";
                if (relayed_) {
                    broke_off();
                } else {
                    co_await reply(413, why);
                }
                co_return std::nullopt;
            }
            Piece p;
            p.data = piece_;
            p.last = s_.ended;
            if (p.last) {
                p.trailers = s_.trailers;
            }
            body_sent_ = body_sent_ || !piece_.empty();
            co_return p;
        }
        const bool woke = co_await s_.signal.wait(
            body_read_deadline(body_start, body_in_, coarse_now(), to.client_body,
                               limits.min_body_rate, to.client_body_grace));
        if (!woke && s_.body.empty() && !s_.ended && !stop_body_ && !stopped()) {
            if (relayed_) {
                broke_off();
            } else {
                co_await reply(408,
                               "request timeout: the request body arrived too slowly "
                               "(timeouts.clientBody, limits.minBodyRate)");
            }
            co_return std::nullopt;
        }
    }
}

Task<bool> H2Exchange::head(const H2ResponseHead& head, bool end) {
    if (stopped() || reply_status_ != 0) {
        co_return false;
    }
    status_ = head.status;
    upstream_at_ = Clock::now();
    const std::string id_name = lower(cx_.config.request_id.header);
    std::vector<H2Field> fields;
    fields.reserve(head.fields.size() + 1);
    for (const auto& f : head.fields) {
        if (!connection_specific(f.name) && (request_id_.empty() || f.name != id_name)) {
            fields.push_back(f);
        }
    }
    if (!request_id_.empty()) {
        fields.push_back({id_name, std::string(request_id_)});
    }
    relayed_ = true;
    s_.answered = end;
    const bool ok = c_.session->respond(id_, head.status, fields, end);
    c_.writer.notify();
    co_return ok;
}

Task<bool> H2Exchange::data(std::string_view bytes, bool last) {
    if (stopped() || !c_.session->body(id_, bytes, last)) {
        co_return false;
    }
    body_out_ += bytes.size();
    s_.answered = last;
    c_.writer.notify();
    if (last) {
        co_return true;
    }
    co_return co_await wait_for_window();
}

Task<bool> H2Exchange::trailers(const std::vector<H2Field>& fields) {
    std::vector<H2Field> out;
    for (const auto& f : fields) {
        if (!connection_specific(f.name)) {
            out.push_back(f);
        }
    }
    if (stopped() || !c_.session->trailers(id_, out)) {
        co_return false;
    }
    s_.answered = true;
    c_.writer.notify();
    co_return true;
}

void H2Exchange::broke_off() {
    if (failure_.empty()) {
        failure_ = "the cluster's response broke off mid-body";
    }
    if (!stopped()) {
        c_.session->reset(id_, 2);  // INTERNAL_ERROR: the client knows it is incomplete
        c_.writer.notify();
    }
}

}  // namespace lb
