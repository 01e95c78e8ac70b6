#include "collector/redaction/redactor.h"

#include <memory>
#include <string>
#include <vector>

#include "collector/redaction/redacting_intake.h"
#include "collector/security/token_file.h"
#include "gmock/gmock.h"
#include "google/protobuf/stubs/logging.h"
#include "gtest/gtest.h"
#include "opentelemetry/proto/resource/v1/resource.pb.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"

namespace tracekeep::redaction {
namespace {

using ::testing::HasSubstr;
using ::testing::IsEmpty;
namespace otlp_common = ::opentelemetry::proto::common::v1;
namespace otlp_trace = ::opentelemetry::proto::trace::v1;

void Add(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attrs, const std::string& key,
         const std::string& value) {
  auto* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

// key -> string value (or "<int>" for ints) of an attribute list.
std::map<std::string, std::string> AsMap(
    const google::protobuf::RepeatedPtrField<otlp_common::KeyValue>& attrs) {
  std::map<std::string, std::string> out;
  for (const auto& kv : attrs) {
    out[kv.key()] = kv.value().has_string_value() ? kv.value().string_value()
                                                  : absl::StrCat("<", kv.value().int_value(), ">");
  }
  return out;
}

std::unique_ptr<Redactor> Make(const RedactorOptions& options) {
  auto r = Redactor::Create(options);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(r).value() : nullptr;
}

RedactorOptions ShopRules() {
  RedactorOptions o;
  o.hash_salt = "pepper";
  o.protected_key = "order.id";
  o.actions = {{"user.email", "", Action::kHash},
               {"", "^http\\.request\\.header\\.", Action::kDelete},
               {"customer.phone", "", Action::kMask},
               {"order.id", "", Action::kHash}};
  o.blocked_values = {"\\b\\d(?:[ -]?\\d){12,15}\\b"};  // card numbers
  return o;
}

otlp_trace::Span ShopSpan() {
  otlp_trace::Span span;
  span.set_name("POST /checkout");
  Add(span.mutable_attributes(), "user.email", "ann@example.com");
  Add(span.mutable_attributes(), "http.request.header.authorization", "Basic c2VjcmV0");
  Add(span.mutable_attributes(), "customer.phone", "+49 30 1234567");
  Add(span.mutable_attributes(), "order.id", "o-42");
  Add(span.mutable_attributes(), "note", "paid with 4111 1111 1111 1111 today");
  auto* n = span.add_attributes();
  n->set_key("items");
  n->mutable_value()->set_int_value(3);
  auto* event = span.add_events();
  event->set_name("payment");
  Add(event->mutable_attributes(), "user.email", "ann@example.com");
  auto* link = span.add_links();
  Add(link->mutable_attributes(), "http.request.header.cookie", "session=abc");
  return span;
}

TEST(RedactorTest, DeletesHashesAndMasksOnSpansEventsAndLinks) {
  auto redactor = Make(ShopRules());
  std::string bytes = ShopSpan().SerializeAsString();
  ASSERT_TRUE(redactor->RedactSpan(&bytes));
  otlp_trace::Span span;
  ASSERT_TRUE(span.ParseFromString(bytes));
  const auto attrs = AsMap(span.attributes());
  EXPECT_EQ(attrs.at("user.email"), security::Sha256Hex("pepper", "ann@example.com"));
  EXPECT_EQ(attrs.count("http.request.header.authorization"), 0u);
  EXPECT_EQ(attrs.at("customer.phone"), "****");
  EXPECT_EQ(attrs.at("order.id"), security::Sha256Hex("pepper", "o-42"));
  EXPECT_EQ(attrs.at("note"), "paid with **** today");
  EXPECT_EQ(attrs.at("items"), "<3>");  // untouched
  EXPECT_EQ(span.name(), "POST /checkout");
  EXPECT_EQ(AsMap(span.events(0).attributes()).at("user.email"),
            security::Sha256Hex("pepper", "ann@example.com"));
  EXPECT_THAT(span.links(0).attributes(), IsEmpty());
  EXPECT_EQ(redactor->stats().attributes_deleted.load(), 2u);
  EXPECT_EQ(redactor->stats().attributes_hashed.load(), 3u);
  EXPECT_EQ(redactor->stats().attributes_masked.load(), 1u);
  EXPECT_EQ(redactor->stats().values_blocked.load(), 1u);
  EXPECT_EQ(redactor->stats().spans_changed.load(), 1u);
}

TEST(RedactorTest, HashingIsConsistentSoOrdersStillGroup) {
  auto redactor = Make(ShopRules());
  std::string a = ShopSpan().SerializeAsString();
  std::string b = ShopSpan().SerializeAsString();
  redactor->RedactSpan(&a);
  redactor->RedactSpan(&b);
  EXPECT_EQ(a, b);
}

TEST(RedactingIntakeTest, UnchangedSpansKeepTheLocatedOrderId) {
  class Recorder final : public SpanIntake {
   public:
    absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t) override {
      got = std::move(traces);
      return absl::OkStatus();
    }
    std::vector<TraceSpans> got;
  } next;
  RedactorOptions o;
  o.actions = {{"user.email", "", Action::kDelete}};
  auto redactor = Make(o);
  RedactingIntake intake(redactor.get(), &next);
  otlp_trace::Span span;
  Add(span.mutable_attributes(), "order.id", "o-42");
  std::vector<TraceSpans> traces(1);
  SpanRecord r;
  r.span = span.SerializeAsString();
  r.key_offset = static_cast<uint32_t>(r.span.find("o-42"));
  r.key_size = 4;
  traces[0].spans.push_back(r);
  ASSERT_TRUE(intake.Offer(std::move(traces), 1).ok());
  EXPECT_EQ(next.got[0].spans[0].key_size, 4u);
  EXPECT_EQ(next.got[0].spans[0].key_offset, r.key_offset);
}

TEST(RedactorTest, LeavesSpansWithoutMatchesByteForByte) {
  auto redactor = Make(ShopRules());
  otlp_trace::Span span;
  Add(span.mutable_attributes(), "http.route", "/checkout");
  const std::string original = span.SerializeAsString();
  std::string bytes = original;
  EXPECT_FALSE(redactor->RedactSpan(&bytes));
  EXPECT_EQ(bytes, original);
}

TEST(RedactorTest, BlockedValuesReachIntoArraysButSkipIgnoredAndOrderKeys) {
  RedactorOptions o;
  o.blocked_values = {"[a-z]+@[a-z]+\\.com"};
  o.ignored_keys = {"support.contact"};
  o.protected_key = "order.id";
  auto redactor = Make(o);
  otlp_trace::Span span;
  auto* list = span.add_attributes();
  list->set_key("cc");
  list->mutable_value()->mutable_array_value()->add_values()->set_string_value("x@y.com");
  Add(span.mutable_attributes(), "support.contact", "help@shop.com");
  Add(span.mutable_attributes(), "order.id", "me@shop.com");
  std::string bytes = span.SerializeAsString();
  ASSERT_TRUE(redactor->RedactSpan(&bytes));
  ASSERT_TRUE(span.ParseFromString(bytes));
  EXPECT_EQ(span.attributes(0).value().array_value().values(0).string_value(), "****");
  EXPECT_EQ(span.attributes(1).value().string_value(), "help@shop.com");
  EXPECT_EQ(span.attributes(2).value().string_value(), "me@shop.com");
}

TEST(RedactorTest, BlockedValuesCanBeHashed) {
  RedactorOptions o;
  o.blocked_values = {"\\d{4}-\\d{4}"};
  o.blocked_values_action = Action::kHash;
  o.hash_salt = "s";
  auto redactor = Make(o);
  otlp_trace::Span span;
  Add(span.mutable_attributes(), "card", "card 1234-5678 ok");
  std::string bytes = span.SerializeAsString();
  redactor->RedactSpan(&bytes);
  ASSERT_TRUE(span.ParseFromString(bytes));
  EXPECT_EQ(span.attributes(0).value().string_value(),
            "card " + security::Sha256Hex("s", "1234-5678") + " ok");
}

TEST(RedactorTest, TheOrderIdCannotBeDeletedOrMasked) {
  RedactorOptions o;
  o.protected_key = "order.id";
  o.actions = {{"order.id", "", Action::kDelete},
               {"", "^order\\.", Action::kMask},
               {"", "(", Action::kDelete}};
  const std::vector<std::string> problems = Validate(o, "redaction");
  ASSERT_EQ(problems.size(), 3u);
  EXPECT_THAT(problems[0], HasSubstr("redaction.actions[0]: would delete the order id attribute"));
  EXPECT_THAT(problems[1], HasSubstr("redaction.actions[1]: would mask the order id attribute"));
  EXPECT_THAT(problems[2], HasSubstr("redaction.actions[2].pattern: not a valid RE2"));
  EXPECT_FALSE(Redactor::Create(o).ok());
}

// Found by redaction_fuzz: proto3 refuses strings that are not UTF-8, and protobuf logged an
// error for every such span. The span is dropped and counted, without a log line.
TEST(RedactorTest, SpansWithInvalidUtf8AreDroppedAndCountedWithoutLogging) {
  auto redactor = Make(ShopRules());
  otlp_trace::Span span;
  Add(span.mutable_attributes(), "user.email", "ann@example.com");
  Add(span.mutable_attributes(), std::string("bad\xff\xfe") + "key", "v");
  std::string bytes = span.SerializePartialAsString();
  static int logged = 0;
  google::protobuf::LogHandler* previous = google::protobuf::SetLogHandler(
      [](google::protobuf::LogLevel, const char*, int, const std::string&) { ++logged; });
  EXPECT_TRUE(redactor->RedactSpan(&bytes));
  EXPECT_TRUE(bytes.empty());
  EXPECT_EQ(redactor->stats().undecodable.load(), 1u);
  google::protobuf::SetLogHandler(previous);
  EXPECT_EQ(logged, 0);
}

TEST(RedactingIntakeTest, RedactsSpansAndSharedResourcesOnceBeforeTheNextStage) {
  class Recorder final : public SpanIntake {
   public:
    absl::Status Offer(std::vector<TraceSpans>&& traces, int64_t n) override {
      got = std::move(traces);
      spans = n;
      return absl::OkStatus();
    }
    std::vector<TraceSpans> got;
    int64_t spans = 0;
  } next;
  RedactorOptions o = ShopRules();
  o.actions.push_back({"host.name", "", Action::kMask});
  auto redactor = Make(o);
  RedactingIntake intake(redactor.get(), &next);

  opentelemetry::proto::resource::v1::Resource resource;
  Add(resource.mutable_attributes(), "service.name", "shop-api");
  Add(resource.mutable_attributes(), "host.name", "db-7.internal");
  auto origin = std::make_shared<SpanOrigin>();
  origin->resource = resource.SerializeAsString();
  origin->service_name = "shop-api";
  std::vector<TraceSpans> traces(2);
  for (TraceSpans& t : traces) {
    for (int i = 0; i < 2; ++i) {
      SpanRecord r;
      r.origin = origin;
      r.span = ShopSpan().SerializeAsString();
      t.spans.push_back(std::move(r));
    }
  }
  traces[1].spans[1].span = "\xff\xff not a span";
  // Where the receiver located the order id: stale once the span is rewritten.
  traces[0].spans[0].key_offset = 40;
  traces[0].spans[0].key_size = 4;
  traces[0].spans[0].key_hash = KeyValueHash("o-42");
  traces[0].spans[0].fields_known = true;  // and its name
  ASSERT_TRUE(intake.Offer(std::move(traces), 4).ok());
  EXPECT_EQ(next.spans, 3);  // the undecodable span is not written
  ASSERT_EQ(next.got.size(), 2u);
  EXPECT_EQ(next.got[1].spans.size(), 1u);
  EXPECT_EQ(redactor->stats().undecodable.load(), 1u);
  const SpanOrigin* redacted = next.got[0].spans[0].origin.get();
  EXPECT_EQ(redacted, next.got[1].spans[0].origin.get());  // still shared
  EXPECT_EQ(redacted->service_name, "shop-api");
  opentelemetry::proto::resource::v1::Resource out;
  ASSERT_TRUE(out.ParseFromString(redacted->resource));
  EXPECT_EQ(AsMap(out.attributes()).at("host.name"), "****");
  EXPECT_THAT(next.got[0].spans[0].span, ::testing::Not(HasSubstr("ann@example.com")));
  EXPECT_EQ(next.got[0].spans[0].key_size, 0u);
  EXPECT_EQ(next.got[0].spans[0].key_offset, 0u);
  EXPECT_FALSE(next.got[0].spans[0].fields_known);
}

}  // namespace
}  // namespace tracekeep::redaction
