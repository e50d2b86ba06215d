// speakerd's ALSA addon: the module and its entry points (the N-API binding layer).
//
// The files, one job each:
//   alsa_lib.{h,cc}       libasound loaded with dlopen() at run time (a table of function pointers)
//   library_log.{h,cc}    libasound's own messages -> speakerd's log
//   pcm.{h,cc}            opening and configuring a PCM
//   writer.{h,cc}         one stream: the bounded queue and the writer thread that owns the PCM
//   mixer.{h,cc}          the hardware mixer control
//   threads.{h,cc}        starting the addon's threads (a failure is a coded error, not std::terminate)
//   args.{h,cc}           the entry points' argument/state checks (REQUIRE_* macros) and coded errors
//   binding_*.cc, here    the entry points: Stream, Mixer, probeAsync; load, setLogHandler
//   main.cc               the production addon's module entry (speakerd_alsa.node)
//   test_hooks.{h,cc}     fault injection and the rest only tests use: only in speakerd_alsa_test.node
//
// Nothing here blocks the event loop but new Mixer() (the card's control device: see mixer.h); the libuv pool
// is never used (an AsyncWorker per write would starve it): the writer and each probe have threads of their own.

#include <mutex>

#include "alsa_lib.h"
#include "args.h"
#include "binding.h"
#include "library_log.h"

namespace speakerd_alsa {

namespace {

// load(): dlopen libasound; undefined, or why it failed.
Napi::Value Load(const Napi::CallbackInfo &info) {
  ENTRY("load()");
  REQUIRE_ARGC(0, 0);
  if (LoadLibWithLog()) return env.Undefined();
  return Napi::String::New(env, LoadError());
}

// ---- the log handler: process-wide (libasound's error handler is), owned by the environment that set it

struct JsLogSink {
  napi_env env;
  Napi::ThreadSafeFunction tsfn;
  bool released = false;
};
std::mutex jsLogMu;
JsLogSink *jsLog = nullptr;  // the current one

struct LogLine {
  int level;
  std::string text;
};

void CallLog(Napi::Env env, Napi::Function fn, LogLine *m) {
  if (env != nullptr && fn != nullptr) {
    try {
      fn.Call({Napi::Number::New(env, m->level), Napi::String::New(env, m->text)});
    } catch (...) {
    }
  }
  delete m;
}

void ReleaseLocked(JsLogSink *s) {
  if (s->released) return;
  s->released = true;
  s->tsfn.Release();
}

// The environment that set the handler goes away (registered after its thread-safe function: runs first).
void LogEnvGone(void *arg) {
  auto *s = static_cast<JsLogSink *>(arg);
  std::lock_guard<std::mutex> g(jsLogMu);
  if (jsLog == s) {
    SetLogSink(nullptr);
    jsLog = nullptr;
  }
  ReleaseLocked(s);
  delete s;
}

// setLogHandler(fn | null): libasound's messages go to fn(level, message); null: they are dropped.
Napi::Value SetLogHandler(const Napi::CallbackInfo &info) {
  ENTRY("setLogHandler(handler)");
  REQUIRE_ARGC(1, 1);
  if (!info[0].IsNull()) (void)ArgFunction(info, 0, USAGE);
  std::lock_guard<std::mutex> g(jsLogMu);
  if (jsLog) {
    SetLogSink(nullptr);  // no poster is inside the old sink after this
    ReleaseLocked(jsLog);
    if (jsLog->env == static_cast<napi_env>(env)) {
      napi_remove_env_cleanup_hook(env, LogEnvGone, jsLog);
      delete jsLog;
    }  // else its own environment's hook deletes it
    jsLog = nullptr;
  }
  if (info[0].IsNull()) return env.Undefined();
  auto *s = new JsLogSink{env, Napi::ThreadSafeFunction::New(env, info[0].As<Napi::Function>(), "speakerd-alsa-log", 0, 1)};
  s->tsfn.Unref(env);  // log lines never keep the process alive
  napi_add_env_cleanup_hook(env, LogEnvGone, s);
  jsLog = s;
  SetLogSink([s](int level, std::string text) {
    auto *m = new LogLine{level, std::move(text)};
    if (s->tsfn.NonBlockingCall(m, CallLog) != napi_ok) delete m;
  });
  return env.Undefined();
}

}  // namespace

Napi::Object InitModule(Napi::Env env, Napi::Object exports) {
  exports.Set("load", Napi::Function::New<Load>(env, "load"));
  exports.Set("setLogHandler", Napi::Function::New<SetLogHandler>(env, "setLogHandler"));
  exports.Set("probeAsync", Napi::Function::New<ProbeAsync>(env, "probeAsync"));
  exports.Set("Stream", StreamClass(env));
  exports.Set("Mixer", MixerClass(env));
  return exports;
}

}  // namespace speakerd_alsa
