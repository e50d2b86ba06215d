{
  # Two addons from one set of sources (native/addon.cc lists the files and their jobs):
  #   speakerd_alsa       the production addon: no test hooks at all
  #   speakerd_alsa_test  the same plus test_hooks.cc, for the tests only (SPEAKERD_ALSA_TEST_HOOKS=1)
  # What does not depend on the hooks is compiled once, into speakerd_alsa_core; the four small files that call
  # a hook (no N-API headers: quick to compile) are compiled once per addon.
  "target_defaults": {
    "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
    "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_DISABLE_DEPRECATED"],
    "cflags": ["-fPIC", "-fvisibility=hidden", "-ffunction-sections", "-fdata-sections"],
    "ldflags": ["-Wl,--gc-sections"],
    "cflags_cc": ["-std=c++17", "-fexceptions", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-unused-parameter"],
    "cflags_cc!": ["-fno-exceptions"],
    "libraries": ["-ldl", "-pthread"]
  },
  "targets": [
    {
      "target_name": "speakerd_alsa_core",
      "type": "static_library",
      "sources": [
        "native/addon.cc",
        "native/args.cc",
        "native/binding_mixer.cc",
        "native/binding_probe.cc",
        "native/binding_stream.cc",
        "native/library_log.cc",
        "native/mixer.cc"
      ]
    },
    {
      "target_name": "speakerd_alsa",
      "dependencies": ["speakerd_alsa_core"],
      "sources": ["native/main.cc", "native/alsa_lib.cc", "native/pcm.cc", "native/writer.cc", "native/threads.cc"]
    },
    {
      "target_name": "speakerd_alsa_test",
      "dependencies": ["speakerd_alsa_core"],
      "defines": ["SPEAKERD_ALSA_TEST_HOOKS"],
      "sources": ["native/test_hooks.cc", "native/alsa_lib.cc", "native/pcm.cc", "native/writer.cc", "native/threads.cc"]
    }
  ]
}
