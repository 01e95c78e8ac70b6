// libFuzzer target: the redaction stage (collector/redaction/) on arbitrary span bytes: it
// either leaves them alone, rewrites them into a span that parses, or drops them.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "collector/redaction/redactor.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const tracekeep::redaction::Redactor* redactor = [] {
    tracekeep::redaction::RedactorOptions o;
    o.hash_salt = "s";
    o.actions = {{"user.email", "", tracekeep::redaction::Action::kHash},
                 {"", "^http\\.request\\.header\\.", tracekeep::redaction::Action::kDelete}};
    o.blocked_values = {"\\d{4}", "[a-z]+@[a-z]+"};
    return tracekeep::redaction::Redactor::Create(o).value().release();
  }();
  std::string span(reinterpret_cast<const char*>(data), size);
  if (redactor->RedactSpan(&span) && !span.empty()) {
    opentelemetry::proto::trace::v1::Span parsed;
    if (!parsed.ParseFromString(span)) __builtin_trap();
  }
  return 0;
}
