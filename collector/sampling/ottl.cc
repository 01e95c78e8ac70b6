#include "collector/sampling/ottl.h"

#include <cctype>
#include <charconv>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "re2/re2.h"

namespace tracekeep::sampling::ottl {
namespace {

// ---- Tokens -----------------------------------------------------------------------------------

enum class Tok {
  kEnd,
  kIdent,
  kString,
  kInt,
  kFloat,
  kCompare,
  kLParen,
  kRParen,
  kLBracket,
  kRBracket,
  kLBrace,
  kDot,
  kComma,
  kMinus,
  kArith,  // + * /
  kOther,  // : and }, only inside constructs that are refused
};

struct Token {
  Tok type = Tok::kEnd;
  std::string text;  // identifier, operator, number; unescaped string contents
  int column = 0;    // 1-based
};

absl::Status ErrorAt(int column, std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("column ", column, ": ", std::string(what)));
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    const char c = s[i];
    const int column = static_cast<int>(i) + 1;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    Token t;
    t.column = column;
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_')) ++j;
      t.type = Tok::kIdent;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      size_t j = i;
      bool is_float = false;
      while (j < s.size() &&
             (std::isdigit(static_cast<unsigned char>(s[j])) || s[j] == '.' || s[j] == 'e' ||
              s[j] == 'E' ||
              ((s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E')))) {
        if (s[j] == '.' || s[j] == 'e' || s[j] == 'E') is_float = true;
        ++j;
      }
      t.type = is_float ? Tok::kFloat : Tok::kInt;
      t.text = std::string(s.substr(i, j - i));
      i = j;
    } else if (c == '"') {
      size_t j = i + 1;
      bool closed = false;
      while (j < s.size()) {
        if (s[j] == '\\' && j + 1 < s.size()) {
          const char e = s[j + 1];
          if (e == 'n') {
            t.text.push_back('\n');
          } else if (e == 't') {
            t.text.push_back('\t');
          } else if (e == '"' || e == '\\') {
            t.text.push_back(e);
          } else {
            return ErrorAt(static_cast<int>(j) + 1,
                           absl::StrCat("unsupported escape \\", std::string(1, e),
                                        " in a string (supported: \\\" \\\\ \\n \\t)"));
          }
          j += 2;
          continue;
        }
        if (s[j] == '"') {
          closed = true;
          break;
        }
        t.text.push_back(s[j]);
        ++j;
      }
      if (!closed) return ErrorAt(column, "string is not closed (missing \")");
      t.type = Tok::kString;
      i = j + 1;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      const bool two = i + 1 < s.size() && s[i + 1] == '=';
      if ((c == '=' || c == '!') && !two) {
        return ErrorAt(column, absl::StrCat("unexpected '", std::string(1, c),
                                            "' (comparisons are == != < <= > >=)"));
      }
      t.type = Tok::kCompare;
      t.text = std::string(s.substr(i, two ? 2 : 1));
      i += two ? 2 : 1;
    } else {
      static constexpr struct {
        char c;
        Tok type;
      } kSingle[] = {{'(', Tok::kLParen},   {')', Tok::kRParen}, {'[', Tok::kLBracket},
                     {']', Tok::kRBracket}, {'{', Tok::kLBrace}, {'.', Tok::kDot},
                     {',', Tok::kComma},    {'-', Tok::kMinus},  {'+', Tok::kArith},
                     {'*', Tok::kArith},    {'/', Tok::kArith},  {':', Tok::kOther},
                     {'}', Tok::kOther}};
      bool found = false;
      for (const auto& k : kSingle) {
        if (k.c == c) {
          t.type = k.type;
          t.text = std::string(1, c);
          found = true;
        }
      }
      if (!found)
        return ErrorAt(column, absl::StrCat("unexpected character '", std::string(1, c), "'"));
      ++i;
    }
    out.push_back(std::move(t));
  }
  Token end;
  end.column = static_cast<int>(s.size()) + 1;
  out.push_back(end);
  return out;
}

// ---- Values -----------------------------------------------------------------------------------

struct Value {
  enum class Type { kNil, kString, kInt, kDouble, kBool, kDuration, kTime, kOther };
  Type type = Type::kNil;
  std::string_view s;
  int64_t i = 0;  // kInt; kDuration in nanoseconds; kTime in Unix nanoseconds
  double d = 0;
  bool b = false;
};

Value FromAttribute(const AttributeValue& a) {
  Value v;
  switch (a.type) {
    case AttributeValue::Type::kString:
      v.type = Value::Type::kString;
      v.s = a.string_value;
      break;
    case AttributeValue::Type::kBool:
      v.type = Value::Type::kBool;
      v.b = a.bool_value;
      break;
    case AttributeValue::Type::kInt:
      v.type = Value::Type::kInt;
      v.i = a.int_value;
      break;
    case AttributeValue::Type::kDouble:
      v.type = Value::Type::kDouble;
      v.d = a.double_value;
      break;
    case AttributeValue::Type::kNone:
      v.type = Value::Type::kOther;
      break;
  }
  return v;
}

enum class Op { kEq, kNe, kLt, kLe, kGt, kGe };

template <typename T>
bool Ordered(const T& a, const T& b, Op op) {
  switch (op) {
    case Op::kEq:
      return a == b;
    case Op::kNe:
      return !(a == b);
    case Op::kLt:
      return a < b;
    case Op::kLe:
      return a <= b;
    case Op::kGt:
      return a > b;
    case Op::kGe:
      return a >= b;
  }
  return false;
}

bool Compare(const Value& a, const Value& b, Op op) {
  using T = Value::Type;
  const bool numeric_a = a.type == T::kInt || a.type == T::kDouble;
  const bool numeric_b = b.type == T::kInt || b.type == T::kDouble;
  if (numeric_a && numeric_b) {
    if (a.type == T::kInt && b.type == T::kInt) return Ordered(a.i, b.i, op);
    const double x = a.type == T::kInt ? static_cast<double>(a.i) : a.d;
    const double y = b.type == T::kInt ? static_cast<double>(b.i) : b.d;
    return Ordered(x, y, op);
  }
  bool equal = false;
  if (a.type == b.type) {
    switch (a.type) {
      case T::kNil:
        equal = true;
        break;
      case T::kString:
        return Ordered(a.s, b.s, op);
      case T::kDuration:
      case T::kTime:
        return Ordered(a.i, b.i, op);
      case T::kBool:
        equal = a.b == b.b;
        break;
      default:  // arrays, maps, bytes: equal to nothing
        equal = false;
        break;
    }
  }
  if (op == Op::kEq) return equal;
  if (op == Op::kNe) return !equal;
  return false;  // values of different types, nil, bools: not ordered
}

// ---- The tree ---------------------------------------------------------------------------------

enum class Source {
  kLiteral,
  kName,
  kKind,
  kStatusCode,
  kAttribute,
  kResourceAttribute,
  kStartNanos,
  kEndNanos,
  kDurationNanos,  // end_time_unix_nano - start_time_unix_nano: an int
  kDuration,       // end_time - start_time: a duration
  kStartTime,      // a time: compared with times, or end_time - start_time
  kEndTime,
};

struct Operand {
  Source source = Source::kLiteral;
  bool of_event = false;    // spanevent context: the event's name/attributes, not the span's
  std::string key;          // attribute key; the text of a string literal
  Value literal;            // kLiteral (its `s` is taken from `key` when evaluated)
  std::string description;  // how the operand was written, for error messages
};

}  // namespace

struct Condition::Tree {
  enum class Kind { kOr, kAnd, kNot, kCompare, kIsMatch, kConstant };
  struct Node {
    Kind kind = Kind::kConstant;
    int left = -1;
    int right = -1;
    Op op = Op::kEq;
    Operand lhs, rhs;
    std::unique_ptr<RE2> regex;
    bool constant = false;
  };
  std::vector<Node> nodes;
  int root = -1;

  Value Resolve(const Operand& o, const Input& in) const {
    Value v;
    switch (o.source) {
      case Source::kLiteral:
        v = o.literal;
        if (v.type == Value::Type::kString) v.s = o.key;
        return v;
      case Source::kName:
        v.type = Value::Type::kString;
        v.s = o.of_event ? in.event_name : in.span_name;
        return v;
      case Source::kKind:
        v.type = Value::Type::kInt;
        v.i = in.kind;
        return v;
      case Source::kStatusCode:
        v.type = Value::Type::kInt;
        v.i = in.status_code;
        return v;
      case Source::kAttribute:
      case Source::kResourceAttribute: {
        const Attribute* attrs = in.span_attributes;
        size_t n = in.span_attribute_count;
        if (o.source == Source::kResourceAttribute) {
          attrs = in.resource_attributes;
          n = in.resource_attribute_count;
        } else if (o.of_event) {
          attrs = in.event_attributes;
          n = in.event_attribute_count;
        }
        for (size_t i = 0; i < n; ++i) {
          if (attrs[i].key == o.key) return FromAttribute(attrs[i].value);
        }
        return v;  // nil
      }
      case Source::kStartNanos:
        v.type = Value::Type::kInt;
        v.i = in.start_unix_nanos;
        return v;
      case Source::kEndNanos:
        v.type = Value::Type::kInt;
        v.i = in.end_unix_nanos;
        return v;
      case Source::kDurationNanos:
      case Source::kDuration:
        v.type = o.source == Source::kDuration ? Value::Type::kDuration : Value::Type::kInt;
        v.i = in.end_unix_nanos - in.start_unix_nanos;
        return v;
      case Source::kStartTime:
      case Source::kEndTime:
        v.type = Value::Type::kTime;
        v.i = o.source == Source::kStartTime ? in.start_unix_nanos : in.end_unix_nanos;
        return v;
    }
    return v;
  }

  bool Eval(int i, const Input& in) const {
    const Node& n = nodes[i];
    switch (n.kind) {
      case Kind::kOr:
        return Eval(n.left, in) || Eval(n.right, in);
      case Kind::kAnd:
        return Eval(n.left, in) && Eval(n.right, in);
      case Kind::kNot:
        return !Eval(n.left, in);
      case Kind::kCompare:
        return Compare(Resolve(n.lhs, in), Resolve(n.rhs, in), n.op);
      case Kind::kIsMatch: {
        const Value v = Resolve(n.lhs, in);
        std::string text;
        switch (v.type) {
          case Value::Type::kString:
            return RE2::PartialMatch(re2::StringPiece(v.s.data(), v.s.size()), *n.regex);
          case Value::Type::kInt:
            text = absl::StrCat(v.i);
            break;
          case Value::Type::kDouble:
            text = absl::StrCat(v.d);
            break;
          case Value::Type::kBool:
            text = v.b ? "true" : "false";
            break;
          default:
            return false;  // nil, arrays, maps, bytes
        }
        return RE2::PartialMatch(text, *n.regex);
      }
      case Kind::kConstant:
        return n.constant;
    }
    return false;
  }
};

namespace {

constexpr char kSpanPaths[] =
    "name, kind, status.code, attributes[\"key\"], resource.attributes[\"key\"], "
    "start_time_unix_nano, end_time_unix_nano, end_time - start_time";
constexpr char kEventPaths[] =
    "name, attributes[\"key\"], resource.attributes[\"key\"], span.<a span path>";

class Parser {
 public:
  Parser(std::vector<Token> tokens, Context context, Condition::Tree* tree)
      : tokens_(std::move(tokens)), context_(context), tree_(tree) {}

  absl::StatusOr<int> ParseCondition() {
    auto root = ParseOr();
    if (!root.ok()) return root.status();
    if (Peek().type != Tok::kEnd) {
      return ErrorAt(Peek().column, absl::StrCat("unexpected ", Describe(Peek()),
                                                 " (conditions join with and, or)"));
    }
    return root;
  }

 private:
  using Kind = Condition::Tree::Kind;

  const Token& Peek(size_t ahead = 0) const {
    return tokens_[std::min(pos_ + ahead, tokens_.size() - 1)];
  }
  const Token& Next() {
    const Token& t = tokens_[pos_];
    if (pos_ + 1 < tokens_.size()) ++pos_;
    return t;
  }
  bool IsWord(const Token& t, std::string_view w) const {
    return t.type == Tok::kIdent && t.text == w;
  }
  static std::string Describe(const Token& t) {
    switch (t.type) {
      case Tok::kEnd:
        return "end of condition";
      case Tok::kString:
        return absl::StrCat("string \"", t.text, "\"");
      default:
        return absl::StrCat("\"", t.text, "\"");
    }
  }

  int Add(Condition::Tree::Node node) {
    tree_->nodes.push_back(std::move(node));
    return static_cast<int>(tree_->nodes.size()) - 1;
  }

  absl::StatusOr<int> ParseOr() {
    auto left = ParseAnd();
    if (!left.ok()) return left;
    while (IsWord(Peek(), "or")) {
      Next();
      auto right = ParseAnd();
      if (!right.ok()) return right;
      Condition::Tree::Node n;
      n.kind = Kind::kOr;
      n.left = *left;
      n.right = *right;
      left = Add(std::move(n));
    }
    return left;
  }

  absl::StatusOr<int> ParseAnd() {
    auto left = ParseTerm();
    if (!left.ok()) return left;
    while (IsWord(Peek(), "and")) {
      Next();
      auto right = ParseTerm();
      if (!right.ok()) return right;
      Condition::Tree::Node n;
      n.kind = Kind::kAnd;
      n.left = *left;
      n.right = *right;
      left = Add(std::move(n));
    }
    return left;
  }

  absl::StatusOr<int> ParseTerm() {
    if (++depth_ > 100) return ErrorAt(Peek().column, "condition nested too deeply");
    const Token& t = Peek();
    if (IsWord(t, "not")) {
      Next();
      auto inner = ParseTerm();
      if (!inner.ok()) return inner;
      Condition::Tree::Node n;
      n.kind = Kind::kNot;
      n.left = *inner;
      --depth_;
      return Add(std::move(n));
    }
    if (t.type == Tok::kLParen) {
      Next();
      auto inner = ParseOr();
      if (!inner.ok()) return inner;
      if (Peek().type != Tok::kRParen) {
        return ErrorAt(Peek().column, absl::StrCat("expected ) but found ", Describe(Peek())));
      }
      Next();
      --depth_;
      return inner;
    }
    if (IsWord(t, "IsMatch") && Peek(1).type == Tok::kLParen) {
      auto match = ParseIsMatch();
      if (!match.ok()) return match;
      if (Peek().type == Tok::kCompare) {
        return ErrorAt(Peek().column,
                       "comparing the result of IsMatch is not supported; write IsMatch(...) or "
                       "not IsMatch(...)");
      }
      --depth_;
      return match;
    }
    const int column = t.column;
    auto lhs = ParseOperand();
    if (!lhs.ok()) return lhs.status();
    if (Peek().type != Tok::kCompare) {
      if (lhs->source == Source::kLiteral && lhs->literal.type == Value::Type::kBool &&
          Peek().type != Tok::kCompare) {
        Condition::Tree::Node n;
        n.kind = Kind::kConstant;
        n.constant = lhs->literal.b;
        --depth_;
        return Add(std::move(n));
      }
      return ErrorAt(Peek().column, absl::StrCat("expected a comparison (== != < <= > >=) after ",
                                                 lhs->description, " (at column ", column,
                                                 "), found ", Describe(Peek())));
    }
    const std::string op = Next().text;
    auto rhs = ParseOperand();
    if (!rhs.ok()) return rhs.status();
    Condition::Tree::Node n;
    n.kind = Kind::kCompare;
    n.op = op == "=="   ? Op::kEq
           : op == "!=" ? Op::kNe
           : op == "<"  ? Op::kLt
           : op == "<=" ? Op::kLe
           : op == ">"  ? Op::kGt
                        : Op::kGe;
    n.lhs = std::move(*lhs);
    n.rhs = std::move(*rhs);
    --depth_;
    return Add(std::move(n));
  }

  absl::StatusOr<int> ParseIsMatch() {
    Next();  // IsMatch
    Next();  // (
    auto target = ParseOperand();
    if (!target.ok()) return target.status();
    if (Peek().type != Tok::kComma) {
      return ErrorAt(
          Peek().column,
          absl::StrCat("IsMatch takes two arguments; expected , but found ", Describe(Peek())));
    }
    Next();
    const Token pattern = Next();
    if (pattern.type != Tok::kString) {
      return ErrorAt(pattern.column,
                     absl::StrCat("the pattern of IsMatch must be a string literal, found ",
                                  Describe(pattern)));
    }
    if (Peek().type != Tok::kRParen) {
      return ErrorAt(Peek().column, absl::StrCat("expected ) after the pattern of IsMatch, found ",
                                                 Describe(Peek())));
    }
    Next();
    RE2::Options options;
    options.set_log_errors(false);
    auto regex = std::make_unique<RE2>(pattern.text, options);
    if (!regex->ok()) {
      return ErrorAt(pattern.column,
                     absl::StrCat("invalid RE2 pattern \"", pattern.text, "\": ", regex->error()));
    }
    Condition::Tree::Node n;
    n.kind = Kind::kIsMatch;
    n.lhs = std::move(*target);
    n.regex = std::move(regex);
    return Add(std::move(n));
  }

  // A value, or end_time - start_time.
  absl::StatusOr<Operand> ParseOperand() {
    auto first = ParseValue();
    if (!first.ok()) return first;
    if (Peek().type == Tok::kArith) {
      return ErrorAt(Peek().column,
                     absl::StrCat("unsupported arithmetic operator ", Peek().text,
                                  " (only end_time - start_time and end_time_unix_nano - "
                                  "start_time_unix_nano)"));
    }
    if (Peek().type == Tok::kMinus) {
      const int minus = Peek().column;
      Next();
      auto second = ParseValue();
      if (!second.ok()) return second;
      Operand o;
      o.of_event = first->of_event;
      if (first->source == Source::kEndTime && second->source == Source::kStartTime &&
          first->of_event == second->of_event) {
        o.source = Source::kDuration;
        o.description = "end_time - start_time";
        return o;
      }
      if (first->source == Source::kEndNanos && second->source == Source::kStartNanos &&
          first->of_event == second->of_event) {
        o.source = Source::kDurationNanos;
        o.description = "end_time_unix_nano - start_time_unix_nano";
        return o;
      }
      return ErrorAt(minus, absl::StrCat("unsupported arithmetic ", first->description, " - ",
                                         second->description,
                                         " (only end_time - start_time and end_time_unix_nano - "
                                         "start_time_unix_nano)"));
    }
    return first;
  }

  absl::StatusOr<Operand> ParseValue() {
    const Token t = Next();
    Operand o;
    switch (t.type) {
      case Tok::kString:
        o.literal.type = Value::Type::kString;
        o.key = t.text;
        o.description = absl::StrCat("\"", t.text, "\"");
        return o;
      case Tok::kMinus: {
        const Token n = Next();
        if (n.type != Tok::kInt && n.type != Tok::kFloat) {
          return ErrorAt(t.column, "unsupported arithmetic: - must precede a number here");
        }
        auto v = Number(n, /*negative=*/true);
        if (!v.ok()) return v.status();
        o.literal = *v;
        o.description = absl::StrCat("-", n.text);
        return o;
      }
      case Tok::kInt:
      case Tok::kFloat: {
        auto v = Number(t, /*negative=*/false);
        if (!v.ok()) return v.status();
        o.literal = *v;
        o.description = t.text;
        return o;
      }
      case Tok::kLBracket:
        return ErrorAt(t.column, "unsupported construct: list literal");
      case Tok::kLBrace:
        return ErrorAt(t.column, "unsupported construct: map literal");
      case Tok::kIdent:
        break;
      default:
        return ErrorAt(t.column, absl::StrCat("expected a value, found ", Describe(t)));
    }
    if (t.text == "true" || t.text == "false") {
      o.literal.type = Value::Type::kBool;
      o.literal.b = t.text == "true";
      o.description = t.text;
      return o;
    }
    if (t.text == "nil") {
      o.description = "nil";
      return o;
    }
    if (Peek().type == Tok::kLParen) return ParseCall(t);
    if (std::isupper(static_cast<unsigned char>(t.text[0]))) return Enum(t);
    return ParsePath(t);
  }

  absl::StatusOr<Value> Number(const Token& t, bool negative) {
    Value v;
    const std::string text = negative ? absl::StrCat("-", t.text) : t.text;
    if (t.type == Tok::kInt) {
      v.type = Value::Type::kInt;
      if (!absl::SimpleAtoi(text, &v.i)) {
        return ErrorAt(t.column, absl::StrCat("integer out of range: ", text));
      }
    } else {
      v.type = Value::Type::kDouble;
      if (!absl::SimpleAtod(text, &v.d)) {
        return ErrorAt(t.column, absl::StrCat("malformed number: ", text));
      }
    }
    return v;
  }

  absl::StatusOr<Operand> ParseCall(const Token& name) {
    if (name.text == "Duration") {
      Next();  // (
      const Token arg = Next();
      if (arg.type != Tok::kString || Peek().type != Tok::kRParen) {
        return ErrorAt(arg.column, "Duration takes one string literal, e.g. Duration(\"1.5s\")");
      }
      Next();
      absl::Duration d;
      if (!absl::ParseDuration(arg.text, &d)) {
        return ErrorAt(arg.column, absl::StrCat("invalid duration \"", arg.text,
                                                "\" (want e.g. 250ms, 1.5s, 2m)"));
      }
      Operand o;
      o.literal.type = Value::Type::kDuration;
      o.literal.i = absl::ToInt64Nanoseconds(d);
      o.description = absl::StrCat("Duration(\"", arg.text, "\")");
      return o;
    }
    if (name.text == "IsMatch") {
      return ErrorAt(name.column,
                     "IsMatch is a condition, not a value: write IsMatch(...) on its own");
    }
    if (std::isupper(static_cast<unsigned char>(name.text[0]))) {
      return ErrorAt(name.column, absl::StrCat("unsupported converter ", name.text,
                                               " (supported: IsMatch, Duration)"));
    }
    return ErrorAt(name.column,
                   absl::StrCat("unsupported function ", name.text,
                                " (editors do not belong in conditions; converters supported: "
                                "IsMatch, Duration)"));
  }

  absl::StatusOr<Operand> Enum(const Token& t) {
    static constexpr struct {
      const char* name;
      int value;
    } kEnums[] = {
        {"STATUS_CODE_UNSET", 0},     {"STATUS_CODE_OK", 1},     {"STATUS_CODE_ERROR", 2},
        {"SPAN_KIND_UNSPECIFIED", 0}, {"SPAN_KIND_INTERNAL", 1}, {"SPAN_KIND_SERVER", 2},
        {"SPAN_KIND_CLIENT", 3},      {"SPAN_KIND_PRODUCER", 4}, {"SPAN_KIND_CONSUMER", 5},
    };
    for (const auto& e : kEnums) {
      if (t.text == e.name) {
        Operand o;
        o.literal.type = Value::Type::kInt;
        o.literal.i = e.value;
        o.description = t.text;
        return o;
      }
    }
    return ErrorAt(t.column, absl::StrCat("unsupported enum ", t.text,
                                          " (supported: STATUS_CODE_*, SPAN_KIND_*)"));
  }

  absl::StatusOr<Operand> ParsePath(const Token& first) {
    std::vector<std::string> parts = {first.text};
    while (Peek().type == Tok::kDot && Peek(1).type == Tok::kIdent) {
      Next();
      parts.push_back(Next().text);
    }
    std::string written;
    for (const std::string& p : parts) absl::StrAppend(&written, written.empty() ? "" : ".", p);
    std::string key;
    bool has_key = false;
    if (Peek().type == Tok::kLBracket) {
      const int column = Next().column;
      const Token k = Next();
      if (k.type != Tok::kString) {
        return ErrorAt(k.column,
                       absl::StrCat("unsupported index of ", written, ": only a string key, e.g. ",
                                    written, "[\"http.route\"]"));
      }
      if (Next().type != Tok::kRBracket) {
        return ErrorAt(column, absl::StrCat("expected ] to close ", written, "[\"", k.text, "\""));
      }
      key = k.text;
      has_key = true;
      absl::StrAppend(&written, "[\"", key, "\"]");
      if (Peek().type == Tok::kLBracket) {
        return ErrorAt(Peek().column,
                       absl::StrCat("unsupported construct: nested index after ", written));
      }
    }
    Operand o;
    o.description = written;
    o.key = key;
    size_t at = 0;
    bool of_span = context_ == Context::kSpan;
    if (context_ == Context::kSpanEvent && parts[0] == "span" && parts.size() > 1) {
      of_span = true;
      at = 1;
    }
    o.of_event = !of_span;
    const std::vector<std::string> rest(parts.begin() + static_cast<long>(at), parts.end());
    const std::string path = absl::StrJoin(rest, ".");
    auto needs_key = [&](Source s) -> absl::StatusOr<Operand> {
      if (!has_key) {
        return ErrorAt(first.column, absl::StrCat(written, " needs a key: ", written, "[\"key\"]"));
      }
      o.source = s;
      return o;
    };
    auto no_key = [&](Source s) -> absl::StatusOr<Operand> {
      if (has_key) {
        return ErrorAt(first.column, absl::StrCat("unsupported index of ", path));
      }
      o.source = s;
      return o;
    };
    if (path == "name") return no_key(Source::kName);
    if (path == "attributes") return needs_key(Source::kAttribute);
    if (path == "resource.attributes") return needs_key(Source::kResourceAttribute);
    if (of_span) {
      if (path == "kind") return no_key(Source::kKind);
      if (path == "status.code") return no_key(Source::kStatusCode);
      if (path == "start_time_unix_nano") return no_key(Source::kStartNanos);
      if (path == "end_time_unix_nano") return no_key(Source::kEndNanos);
      if (path == "start_time") return no_key(Source::kStartTime);
      if (path == "end_time") return no_key(Source::kEndTime);
    }
    return ErrorAt(
        first.column,
        absl::StrCat("unsupported path ", written, " in the ",
                     context_ == Context::kSpan ? "span" : "spanevent", " context (supported: ",
                     context_ == Context::kSpan ? kSpanPaths : kEventPaths, ")"));
  }

  std::vector<Token> tokens_;
  size_t pos_ = 0;
  int depth_ = 0;
  Context context_;
  Condition::Tree* tree_;
};

}  // namespace

absl::StatusOr<Condition> Condition::Parse(std::string_view text, Context context) {
  auto tokens = Tokenize(text);
  if (!tokens.ok()) return tokens.status();
  if (tokens->size() == 1) return ErrorAt(1, "empty condition");
  auto tree = std::make_unique<Tree>();
  Parser parser(std::move(tokens).value(), context, tree.get());
  auto root = parser.ParseCondition();
  if (!root.ok()) return root.status();
  tree->root = *root;
  return Condition(std::move(tree));
}

bool Condition::Evaluate(const Input& input) const { return tree_->Eval(tree_->root, input); }

Condition::Condition(std::unique_ptr<Tree> tree) : tree_(std::move(tree)) {}
Condition::Condition(Condition&&) noexcept = default;
Condition& Condition::operator=(Condition&&) noexcept = default;
Condition::~Condition() = default;

}  // namespace tracekeep::sampling::ottl
