// Argument and state checks for the entry points, and the coded errors they throw.
//
// Every entry point names itself (ENTRY) and checks what it is given before it touches it, the way
// better-sqlite3 guards its entries with REQUIRE_* macros: the count, each type, each range, the handle's state.
// A failed check throws a TypeError (missing, wrong type) or a RangeError (out of range) or an Error (closed
// handle, no thread), each with a `code` like the SDK's ErrorCodes, so that a caller's mistake is an exception
// JavaScript can catch, never a crash or a silent 0.
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>

#include "alsa_lib.h"
#include "library_log.h"

namespace speakerd_alsa {

// The `code` of the errors the entry points throw (src/binding.ts: NativeErrorCodes).
constexpr const char *ERR_ARGUMENT = "SPEAKERD_ERR_ALSA_ARGUMENT";  // TypeError: missing, or of the wrong type
constexpr const char *ERR_RANGE = "SPEAKERD_ERR_ALSA_RANGE";        // RangeError: a value out of its range
constexpr const char *ERR_CLOSED = "SPEAKERD_ERR_ALSA_CLOSED";      // Error: the stream or mixer is closed
constexpr const char *ERR_THREAD = "SPEAKERD_ERR_ALSA_THREAD";      // Error (+errno): a thread could not start
constexpr const char *ERR_MIXER = "SPEAKERD_ERR_ALSA_MIXER";        // Error (+errno): the mixer failed
constexpr const char *ERR_UNAVAILABLE = "SPEAKERD_ERR_BACKEND_UNAVAILABLE";  // libasound is not loaded

enum class ErrorKind { Error, Type, Range };

// Throw a JavaScript error with .code, and .errno when err != 0.
[[noreturn]] void ThrowCoded(Napi::Env env, ErrorKind kind, const char *code, const std::string &message, int err = 0);

// The checks the macros below expand to. `usage` names the entry point in the message ("write(data)").
void RequireCount(const Napi::CallbackInfo &info, size_t min, size_t max, const char *usage);
Napi::Object ArgObject(const Napi::CallbackInfo &info, size_t i, const char *usage);
Napi::Function ArgFunction(const Napi::CallbackInfo &info, size_t i, const char *usage);
std::string ArgString(const Napi::CallbackInfo &info, size_t i, const char *usage);
Napi::TypedArray ArgTypedArray(const Napi::CallbackInfo &info, size_t i, const char *usage);
double ArgNumber(const Napi::CallbackInfo &info, size_t i, double lo, double hi, const char *usage);
uint32_t ArgUint32(const Napi::CallbackInfo &info, size_t i, uint32_t lo, uint32_t hi, const char *usage);
bool ArgBoolean(const Napi::CallbackInfo &info, size_t i, const char *usage);
std::string FieldString(const Napi::Object &o, const char *key, const char *usage);
int64_t FieldInteger(const Napi::Object &o, const char *key, int64_t lo, int64_t hi, const char *usage);
bool FieldOptionalBoolean(const Napi::Object &o, const char *key, const char *usage);

// ENTRY("write(data)") first in every entry point: `env` and the name the checks use.
#define ENTRY(usage)                                                                                               \
  const char *const USAGE = (usage);                                                                               \
  Napi::Env env = info.Env()

#define REQUIRE_ARGC(min, max) RequireCount(info, (min), (max), USAGE)
#define REQUIRE_OBJECT(i, var) Napi::Object var = ArgObject(info, (i), USAGE)
#define REQUIRE_FUNCTION(i, var) Napi::Function var = ArgFunction(info, (i), USAGE)
#define REQUIRE_STRING(i, var) std::string var = ArgString(info, (i), USAGE)
#define REQUIRE_TYPED_ARRAY(i, var) Napi::TypedArray var = ArgTypedArray(info, (i), USAGE)
#define REQUIRE_NUMBER(i, var, lo, hi) double var = ArgNumber(info, (i), (lo), (hi), USAGE)
#define REQUIRE_UINT32(i, var, lo, hi) uint32_t var = ArgUint32(info, (i), (lo), (hi), USAGE)
#define REQUIRE_BOOLEAN(i, var) bool var = ArgBoolean(info, (i), USAGE)
#define REQUIRE_FIELD_STRING(obj, key, var) std::string var = FieldString((obj), key, USAGE)
#define REQUIRE_FIELD_INTEGER(obj, key, var, lo, hi) int64_t var = FieldInteger((obj), key, (lo), (hi), USAGE)
#define OPTIONAL_FIELD_BOOLEAN(obj, key, var) bool var = FieldOptionalBoolean((obj), key, USAGE)
// The handle is usable: else SPEAKERD_ERR_ALSA_CLOSED.
#define REQUIRE_OPEN(usable, what)                                                                                 \
  if (!(usable)) ThrowCoded(env, ErrorKind::Error, ERR_CLOSED, std::string(USAGE) + ": the " what " is closed")
// libasound is loaded (and its messages go to the log): else SPEAKERD_ERR_BACKEND_UNAVAILABLE.
#define REQUIRE_LIBRARY()                                                                                          \
  if (!LoadLibWithLog()) ThrowCoded(env, ErrorKind::Error, ERR_UNAVAILABLE, "libasound.so.2 is not loaded: " + LoadError())

}  // namespace speakerd_alsa
