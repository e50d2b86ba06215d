// The checks behind args.h's macros.

#include "args.h"

#include <cmath>

namespace speakerd_alsa {

namespace {

const char *TypeName(const Napi::Value &v) {
  switch (v.Type()) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_function: return "a function";
    case napi_bigint: return "a bigint";
    case napi_external: return "an external";
    default: return v.IsTypedArray() ? "a typed array" : v.IsArray() ? "an array" : "an object";
  }
}

std::string Num(double d) {
  if (std::isnan(d)) return "NaN";
  if (std::isinf(d)) return d > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  snprintf(buf, sizeof buf, "%.17g", d);
  return buf;
}

[[noreturn]] void WrongType(Napi::Env env, const std::string &what, const char *expected, const Napi::Value &v,
                            const char *usage) {
  ThrowCoded(env, ErrorKind::Type, ERR_ARGUMENT,
             std::string(usage) + ": " + what + " must be " + expected + ", got " + TypeName(v));
}

std::string Arg(size_t i) { return "argument " + std::to_string(i + 1); }

double CheckNumber(Napi::Env env, const Napi::Value &v, const std::string &what, double lo, double hi, bool integer,
                   const char *usage) {
  if (!v.IsNumber()) WrongType(env, what, integer ? "an integer" : "a number", v, usage);
  double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < lo || d > hi || (integer && std::floor(d) != d))
    ThrowCoded(env, ErrorKind::Range, ERR_RANGE,
               std::string(usage) + ": " + what + " must be " + (integer ? "an integer" : "a number") + " in " +
                   Num(lo) + ".." + Num(hi) + ", got " + Num(d));
  return d;
}

std::string CheckString(Napi::Env env, const Napi::Value &v, const std::string &what, const char *usage) {
  if (!v.IsString()) WrongType(env, what, "a string", v, usage);
  std::string s = v.As<Napi::String>().Utf8Value();
  if (s.empty() || s.find('\0') != std::string::npos)
    ThrowCoded(env, ErrorKind::Range, ERR_RANGE, std::string(usage) + ": " + what + " must be a non-empty string without NUL");
  return s;
}

}  // namespace

void ThrowCoded(Napi::Env env, ErrorKind kind, const char *code, const std::string &message, int err) {
  Napi::Error e = kind == ErrorKind::Type    ? Napi::TypeError::New(env, message)
                  : kind == ErrorKind::Range ? Napi::RangeError::New(env, message)
                                             : Napi::Error::New(env, message);
  e.Set("code", Napi::String::New(env, code));
  if (err != 0) e.Set("errno", Napi::Number::New(env, err));
  throw e;
}

void RequireCount(const Napi::CallbackInfo &info, size_t min, size_t max, const char *usage) {
  size_t n = info.Length();
  if (n >= min && n <= max) return;
  std::string want = min == max ? std::to_string(min) : std::to_string(min) + ".." + std::to_string(max);
  ThrowCoded(info.Env(), ErrorKind::Type, ERR_ARGUMENT,
             std::string(usage) + ": expected " + want + " argument" + (max == 1 ? "" : "s") + ", got " +
                 std::to_string(n));
}

Napi::Object ArgObject(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  Napi::Value v = info[i];
  if (!v.IsObject() || v.IsFunction() || v.IsArray()) WrongType(info.Env(), Arg(i), "an object", v, usage);
  return v.As<Napi::Object>();
}

Napi::Function ArgFunction(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  Napi::Value v = info[i];
  if (!v.IsFunction()) WrongType(info.Env(), Arg(i), "a function", v, usage);
  return v.As<Napi::Function>();
}

std::string ArgString(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  return CheckString(info.Env(), info[i], Arg(i), usage);
}

Napi::TypedArray ArgTypedArray(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  Napi::Value v = info[i];
  if (!v.IsTypedArray()) WrongType(info.Env(), Arg(i), "a Uint8Array (or another typed array)", v, usage);
  return v.As<Napi::TypedArray>();
}

double ArgNumber(const Napi::CallbackInfo &info, size_t i, double lo, double hi, const char *usage) {
  return CheckNumber(info.Env(), info[i], Arg(i), lo, hi, false, usage);
}

uint32_t ArgUint32(const Napi::CallbackInfo &info, size_t i, uint32_t lo, uint32_t hi, const char *usage) {
  return static_cast<uint32_t>(CheckNumber(info.Env(), info[i], Arg(i), lo, hi, true, usage));
}

bool ArgBoolean(const Napi::CallbackInfo &info, size_t i, const char *usage) {
  Napi::Value v = info[i];
  if (!v.IsBoolean()) WrongType(info.Env(), Arg(i), "a boolean", v, usage);
  return v.As<Napi::Boolean>().Value();
}

std::string FieldString(const Napi::Object &o, const char *key, const char *usage) {
  return CheckString(o.Env(), o.Get(key), std::string("options.") + key, usage);
}

int64_t FieldInteger(const Napi::Object &o, const char *key, int64_t lo, int64_t hi, const char *usage) {
  return static_cast<int64_t>(CheckNumber(o.Env(), o.Get(key), std::string("options.") + key,
                                          static_cast<double>(lo), static_cast<double>(hi), true, usage));
}

bool FieldOptionalBoolean(const Napi::Object &o, const char *key, const char *usage) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined()) return false;
  if (!v.IsBoolean()) WrongType(o.Env(), std::string("options.") + key, "a boolean", v, usage);
  return v.As<Napi::Boolean>().Value();
}

}  // namespace speakerd_alsa
