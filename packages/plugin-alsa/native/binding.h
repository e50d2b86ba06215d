// The N-API binding layer: the entry points JavaScript calls (src/binding.ts describes them), spread over
// binding_stream.cc (Stream), binding_mixer.cc (Mixer), binding_probe.cc (probeAsync) and addon.cc (the module:
// load, setLogHandler, and what it exports). Every entry point checks its arguments and state (args.h).
#pragma once

#include <napi.h>

#include "pcm.h"

namespace speakerd_alsa {

Napi::Function StreamClass(Napi::Env env);
Napi::Function MixerClass(Napi::Env env);

// The device and format a probe asks about, from {device, format, rate, channels, allowResample}.
Config ProbeConfigFrom(const Napi::Object &o, const char *usage);
// {ok, errno, fatal, message}
Napi::Object ProbeResultObject(Napi::Env env, const OpenResult &r);
Napi::Value ProbeAsync(const Napi::CallbackInfo &info);

// The production module's exports (the test addon adds its hooks to them: test_hooks.cc).
Napi::Object InitModule(Napi::Env env, Napi::Object exports);
Napi::Object InitTestModule(Napi::Env env, Napi::Object exports);  // test_hooks.cc, test addon only

}  // namespace speakerd_alsa
