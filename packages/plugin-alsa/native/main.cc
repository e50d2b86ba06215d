// The production addon's module entry (speakerd_alsa.node): the exports of addon.cc and nothing else.
// The test addon's entry is in test_hooks.cc.

#include <napi.h>

#include "binding.h"

static Napi::Object Init(Napi::Env env, Napi::Object exports) { return speakerd_alsa::InitModule(env, exports); }

NODE_API_MODULE(speakerd_alsa, Init)
