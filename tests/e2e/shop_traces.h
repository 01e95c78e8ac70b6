// Small synthetic OTLP traces for the end-to-end suites that need many distinct traces with
// known ids (Kafka): three recent spans of "shop-api", the last one optionally an error.
#ifndef TRACEKEEP_TESTS_E2E_SHOP_TRACES_H_
#define TRACEKEEP_TESTS_E2E_SHOP_TRACES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "collector/common/ids.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep::e2e {

struct ShopTraceOptions {
  char trace_id_fill = '\x5a';  // each suite its own ids: the trace id's first 12 bytes
  char span_id_fill = '\x02';   // the span ids' first 7 bytes
  const char* name_prefix = "op-";
  bool error = false;  // the last span has status ERROR
};

// Trace `n` (its number in the trace id's last 4 bytes). Times are now: old spans would be
// dropped by the store's retention. Returns the request; `trace_id_hex` gets its trace id and
// `span_ids_hex` (when set) its span ids, in hex.
inline opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest ShopTrace(
    uint32_t n, const ShopTraceOptions& o, std::string* trace_id_hex,
    std::vector<std::string>* span_ids_hex = nullptr) {
  opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest request;
  auto* rs = request.add_resource_spans();
  auto* attr = rs->mutable_resource()->add_attributes();
  attr->set_key("service.name");
  attr->mutable_value()->set_string_value("shop-api");
  auto* ss = rs->add_scope_spans();
  std::string trace_id(16, o.trace_id_fill);
  for (int i = 0; i < 4; ++i) trace_id[12 + i] = static_cast<char>(n >> (8 * i));
  const uint64_t now = static_cast<uint64_t>(absl::ToUnixNanos(absl::Now()));
  for (int s = 0; s < 3; ++s) {
    auto* span = ss->add_spans();
    span->set_trace_id(trace_id);
    std::string span_id(8, o.span_id_fill);
    span_id[7] = static_cast<char>(s + 1);
    span->set_span_id(span_id);
    span->set_name(absl::StrCat(o.name_prefix, s));
    span->set_start_time_unix_nano(now + s);
    span->set_end_time_unix_nano(now + 1000000 + s);
    if (s == 2 && o.error) {
      span->mutable_status()->set_code(opentelemetry::proto::trace::v1::Status::STATUS_CODE_ERROR);
    }
    if (span_ids_hex != nullptr) span_ids_hex->push_back(ToHex(span_id));
  }
  *trace_id_hex = ToHex(trace_id);
  return request;
}

}  // namespace tracekeep::e2e

#endif  // TRACEKEEP_TESTS_E2E_SHOP_TRACES_H_
