#include "collector/pipeline/otlp_convert.h"

#include <unordered_map>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "collector/common/ids.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"

namespace tracekeep {
namespace {

namespace otlp_trace = ::opentelemetry::proto::trace::v1;
constexpr int kMaxDescribedRejects = 3;

std::string ServiceName(const opentelemetry::proto::resource::v1::Resource& resource) {
  for (const auto& kv : resource.attributes()) {
    if (kv.key() == "service.name" && kv.value().has_string_value()) {
      return kv.value().string_value();
    }
  }
  return "";
}

void Describe(SplitResult* result, int64_t* counter, const std::string& what, int r, int s, int i) {
  ++*counter;
  if (result->rejected() > kMaxDescribedRejects) return;
  if (!result->error_message.empty()) absl::StrAppend(&result->error_message, "; ");
  absl::StrAppend(&result->error_message, "resource_spans[", r, "].scope_spans[", s, "].spans[", i,
                  "]: ", what);
}

// Reads a base-128 varint; false at the end of the input or past 10 bytes.
bool ReadVarint(absl::string_view* in, uint64_t* value) {
  uint64_t result = 0;
  for (int shift = 0; shift < 64 && !in->empty(); shift += 7) {
    const auto byte = static_cast<uint8_t>((*in)[0]);
    in->remove_prefix(1);
    result |= static_cast<uint64_t>(byte & 0x7f) << shift;
    if ((byte & 0x80) == 0) {
      *value = result;
      return true;
    }
  }
  return false;
}

// Calls `fn(field_number, bytes)` for every length-delimited field of the message in `in`, and
// skips the others. False when the framing is broken.
template <typename Fn>
bool ForEachLengthDelimited(absl::string_view in, Fn fn) {
  while (!in.empty()) {
    uint64_t tag = 0;
    if (!ReadVarint(&in, &tag)) return false;
    uint64_t n = 0;
    switch (tag & 7) {
      case 0:  // varint
        if (!ReadVarint(&in, &n)) return false;
        break;
      case 1:  // fixed64
        if (in.size() < 8) return false;
        in.remove_prefix(8);
        break;
      case 5:  // fixed32
        if (in.size() < 4) return false;
        in.remove_prefix(4);
        break;
      case 2:  // length-delimited
        if (!ReadVarint(&in, &n) || n > in.size()) return false;
        if (!fn(static_cast<uint32_t>(tag >> 3), in.substr(0, n))) return false;
        in.remove_prefix(n);
        break;
      default:  // groups are not used by OTLP
        return false;
    }
  }
  return true;
}

}  // namespace

bool SliceSpans(absl::string_view wire, std::vector<absl::string_view>* spans) {
  // ExportTraceServiceRequest.resource_spans = 1; ResourceSpans.scope_spans = 2;
  // ScopeSpans.spans = 2.
  return ForEachLengthDelimited(wire, [spans](uint32_t field, absl::string_view rs) {
    if (field != 1) return true;
    return ForEachLengthDelimited(rs, [spans](uint32_t field, absl::string_view ss) {
      if (field != 2) return true;
      return ForEachLengthDelimited(ss, [spans](uint32_t field, absl::string_view span) {
        if (field == 2) spans->push_back(span);
        return true;
      });
    });
  });
}

SplitResult SplitRequest(const OtlpRequest& request, absl::string_view wire) {
  std::vector<absl::string_view> slices;
  if (!wire.empty()) {
    int total = 0;
    for (const auto& rs : request.resource_spans()) {
      for (const auto& ss : rs.scope_spans()) total += ss.spans_size();
    }
    if (!SliceSpans(wire, &slices) || static_cast<int>(slices.size()) != total) slices.clear();
  }
  size_t next_slice = 0;
  SplitResult result;
  absl::flat_hash_map<std::string, size_t> index;  // trace id -> position in result.traces
  for (int r = 0; r < request.resource_spans_size(); ++r) {
    const auto& rs = request.resource_spans(r);
    const std::string resource = rs.resource().SerializeAsString();
    const std::string service = ServiceName(rs.resource());
    for (int s = 0; s < rs.scope_spans_size(); ++s) {
      const auto& ss = rs.scope_spans(s);
      auto origin = std::make_shared<SpanOrigin>();
      origin->resource = resource;
      origin->resource_schema_url = rs.schema_url();
      origin->scope = ss.scope().SerializeAsString();
      origin->scope_schema_url = ss.schema_url();
      origin->service_name = service;
      const SpanOriginPtr shared_origin = std::move(origin);
      for (int i = 0; i < ss.spans_size(); ++i) {
        const otlp_trace::Span& span = ss.spans(i);
        const absl::string_view slice = slices.empty() ? absl::string_view() : slices[next_slice++];
        if (!IsValidId(span.trace_id(), kTraceIdSize)) {
          Describe(&result, &result.rejected_invalid_trace_id,
                   absl::StrCat("invalid trace_id \"", ToHex(span.trace_id()), "\" (",
                                span.trace_id().size(), " bytes; want 16, not all zero)"),
                   r, s, i);
          continue;
        }
        if (!IsValidId(span.span_id(), kSpanIdSize)) {
          Describe(&result, &result.rejected_invalid_span_id,
                   absl::StrCat("invalid span_id \"", ToHex(span.span_id()), "\" (",
                                span.span_id().size(), " bytes; want 8, not all zero)"),
                   r, s, i);
          continue;
        }
        auto [it, inserted] = index.try_emplace(span.trace_id(), result.traces.size());
        if (inserted) {
          TraceSpans& t = result.traces.emplace_back();
          t.trace_id = span.trace_id();
          t.hash = TraceIdHash(t.trace_id);
        }
        SpanRecord& rec = result.traces[it->second].spans.emplace_back();
        rec.origin = shared_origin;
        if (!slices.empty()) {
          rec.span.assign(slice.data(), slice.size());
        } else {
          span.SerializeToString(&rec.span);
        }
        rec.span_id = span.span_id();
        rec.start_unix_nanos = static_cast<int64_t>(span.start_time_unix_nano());
        rec.end_unix_nanos = static_cast<int64_t>(span.end_time_unix_nano());
        rec.is_error = span.status().code() == otlp_trace::Status::STATUS_CODE_ERROR;
        rec.is_root = span.parent_span_id().empty();
        ++result.accepted_spans;
      }
    }
  }
  if (result.rejected() > kMaxDescribedRejects) {
    absl::StrAppend(&result.error_message, "; and ", result.rejected() - kMaxDescribedRejects,
                    " more");
  }
  return result;
}

void BuildRequest(const std::vector<const SpanRecord*>& spans, OtlpRequest* out) {
  // Spans that share an origin pointer share one ScopeSpans; origins that share resource bytes
  // share one ResourceSpans.
  std::unordered_map<const SpanOrigin*, otlp_trace::ScopeSpans*> scopes;
  std::unordered_map<std::string, otlp_trace::ResourceSpans*> resources;
  for (const SpanRecord* rec : spans) {
    otlp_trace::ScopeSpans*& ss = scopes[rec->origin.get()];
    if (ss == nullptr) {
      const std::string key =
          absl::StrCat(rec->origin->resource, "\x00", rec->origin->resource_schema_url);
      otlp_trace::ResourceSpans*& rs = resources[key];
      if (rs == nullptr) {
        rs = out->add_resource_spans();
        rs->mutable_resource()->ParseFromString(rec->origin->resource);
        rs->set_schema_url(rec->origin->resource_schema_url);
      }
      ss = rs->add_scope_spans();
      ss->mutable_scope()->ParseFromString(rec->origin->scope);
      ss->set_schema_url(rec->origin->scope_schema_url);
    }
    ss->add_spans()->ParseFromString(rec->span);
  }
}

void BuildRequest(const KeptTraces& traces, OtlpRequest* out) {
  std::vector<const SpanRecord*> spans;
  for (const KeptTrace& t : traces) {
    for (const SpanRecord& rec : t.spans) spans.push_back(&rec);
  }
  BuildRequest(spans, out);
}

}  // namespace tracekeep
