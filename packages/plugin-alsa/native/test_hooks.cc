// The test addon (speakerd_alsa_test.node, built with SPEAKERD_ALSA_TEST_HOOKS): the production exports plus
// what only tests use. Never in the production addon (test/alsa-addon.test.ts checks its bytes).
//
//   injectFault({write?, writeCount?, open?, openCount?, sleepMs?, sleepCount?, thread?, threadCount?}): the next
//     writes/opens fail with an errno, the writer sleeps as if blocked in a write, thread creation fails
//   clearFaults()
//   probe(options): probeAsync's work on the calling thread (synchronous)
//   testHooks: true
// and SPEAKERD_ALSA_LIBRARY=<file> in the environment: dlopen that file instead of libasound.so.2 (to test the
// "library missing" message).

#include <cstdlib>
#include <mutex>

#include "alsa_lib.h"
#include "args.h"
#include "binding.h"
#include "test_hooks.h"

namespace speakerd_alsa {

namespace {

struct Faults {
  int writeErrno = 0, writeCount = 0;
  int openErrno = 0, openCount = 0;
  int sleepMs = 0, sleepCount = 0;
  int threadErrno = 0, threadCount = 0;
};
std::mutex faultMu;
Faults faults;

int Take(int &value, int &count) {
  std::lock_guard<std::mutex> g(faultMu);
  if (count <= 0 || value == 0) return 0;
  count--;
  return value;
}

int OptionalInt(const Napi::Object &o, const char *key, int64_t lo, int64_t hi, int def, const char *usage) {
  if (o.Get(key).IsUndefined()) return def;
  return static_cast<int>(FieldInteger(o, key, lo, hi, usage));
}

Napi::Value InjectFault(const Napi::CallbackInfo &info) {
  ENTRY("injectFault(spec)");
  REQUIRE_ARGC(1, 1);
  REQUIRE_OBJECT(0, o);
  Faults f;
  {
    std::lock_guard<std::mutex> g(faultMu);
    f = faults;
  }
  struct Knob {
    const char *key, *countKey;
    int Faults::*value;
    int Faults::*count;
    int64_t max;
  };
  static const Knob knobs[] = {
      {"write", "writeCount", &Faults::writeErrno, &Faults::writeCount, 4095},
      {"open", "openCount", &Faults::openErrno, &Faults::openCount, 4095},
      {"sleepMs", "sleepCount", &Faults::sleepMs, &Faults::sleepCount, 60000},
      {"thread", "threadCount", &Faults::threadErrno, &Faults::threadCount, 4095},
  };
  for (const Knob &k : knobs) {
    if (!o.Has(k.key)) continue;
    f.*k.value = OptionalInt(o, k.key, 0, k.max, 0, USAGE);
    f.*k.count = OptionalInt(o, k.countKey, 0, 1 << 30, 1, USAGE);
  }
  std::lock_guard<std::mutex> g(faultMu);
  faults = f;
  return env.Undefined();
}

Napi::Value ClearFaults(const Napi::CallbackInfo &info) {
  ENTRY("clearFaults()");
  REQUIRE_ARGC(0, 0);
  std::lock_guard<std::mutex> g(faultMu);
  faults = Faults();
  return env.Undefined();
}

// probe(options): the work of probeAsync, here on the calling thread.
Napi::Value Probe(const Napi::CallbackInfo &info) {
  ENTRY("probe(options)");
  REQUIRE_ARGC(1, 1);
  REQUIRE_OBJECT(0, o);
  Config c = ProbeConfigFrom(o, USAGE);
  REQUIRE_LIBRARY();
  snd_pcm_t *pcm = nullptr;
  return ProbeResultObject(env, OpenPcm(c, false, &pcm));
}

}  // namespace

Napi::Object InitTestModule(Napi::Env env, Napi::Object exports) {
  InitModule(env, exports);
  exports.Set("injectFault", Napi::Function::New<InjectFault>(env, "injectFault"));
  exports.Set("clearFaults", Napi::Function::New<ClearFaults>(env, "clearFaults"));
  exports.Set("probe", Napi::Function::New<Probe>(env, "probe"));
  exports.Set("testHooks", Napi::Boolean::New(env, true));
  return exports;
}

int TakeOpenFault() { return Take(faults.openErrno, faults.openCount); }
int TakeWriteFault() { return Take(faults.writeErrno, faults.writeCount); }
int TakeSleepFault() { return Take(faults.sleepMs, faults.sleepCount); }
int TakeThreadFault() { return Take(faults.threadErrno, faults.threadCount); }

const char *LibraryOverride() {
  const char *forced = std::getenv("SPEAKERD_ALSA_LIBRARY");
  return forced && *forced ? forced : nullptr;
}

const char *InjectedSuffix() { return " (injected)"; }

}  // namespace speakerd_alsa

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return speakerd_alsa::InitTestModule(env, exports); }

NODE_API_MODULE(speakerd_alsa_test, Init)
