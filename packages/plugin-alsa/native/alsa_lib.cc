// libasound's function table: dlopen("libasound.so.2") once, every symbol resolved or none.
// The test build (SPEAKERD_ALSA_TEST_HOOKS) may load another file instead (test_hooks.h: LibraryOverride).

#include "alsa_lib.h"

#include <dlfcn.h>

#include <cstring>
#include <mutex>

#include "test_hooks.h"

namespace speakerd_alsa {

Lib lib;

namespace {
std::mutex loadMu;
bool loadTried = false;
std::string loadError;
}  // namespace

bool LoadLib() {
  std::lock_guard<std::mutex> g(loadMu);
  if (loadTried) return loadError.empty();
  loadTried = true;
  const char *forced = LibraryOverride();
  const char *libName = forced ? forced : "libasound.so.2";
  void *h = dlopen(libName, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    const char *e = dlerror();
    loadError = e ? e : "dlopen failed";
    return false;
  }
#define SPEAKERD_ALSA_LOAD(name, ret, args)                                                                        \
  lib.name = reinterpret_cast<ret(*) args>(dlsym(h, #name));                                                       \
  if (!lib.name) {                                                                                                 \
    loadError = std::string(libName) + " has no symbol " #name;                                                    \
    lib = Lib();                                                                                                   \
    return false;                                                                                                  \
  }
  ALSA_FUNCS(SPEAKERD_ALSA_LOAD)
#undef SPEAKERD_ALSA_LOAD
  return true;
}

std::string LoadError() {
  std::lock_guard<std::mutex> g(loadMu);
  return loadError;
}

std::string StrError(int err) {
  if (err < 0) err = -err;
  if (lib.snd_strerror) return lib.snd_strerror(-err);
  return std::strerror(err);
}

}  // namespace speakerd_alsa
