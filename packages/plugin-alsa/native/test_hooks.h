// Test hooks, as the core code sees them. The test addon (speakerd_alsa_test.node, built with
// SPEAKERD_ALSA_TEST_HOOKS defined) gets them from test_hooks.cc; in the production addon they are empty inline
// functions here, so that it holds no fault injection, no library override and no hook names at all.
#pragma once

namespace speakerd_alsa {

#ifdef SPEAKERD_ALSA_TEST_HOOKS
int TakeOpenFault();             // errno (positive) the next PCM open fails with, 0 for none
int TakeWriteFault();            // errno the next write fails with
int TakeSleepFault();            // ms the writer sleeps before its next write, as if blocked in the device
int TakeThreadFault();           // errno the next thread creation fails with (std::system_error)
const char *LibraryOverride();   // SPEAKERD_ALSA_LIBRARY: another file to dlopen instead of libasound.so.2
const char *InjectedSuffix();    // " (injected)", for the messages of injected failures
#else
inline int TakeOpenFault() { return 0; }
inline int TakeWriteFault() { return 0; }
inline int TakeSleepFault() { return 0; }
inline int TakeThreadFault() { return 0; }
inline const char *LibraryOverride() { return nullptr; }
inline const char *InjectedSuffix() { return ""; }
#endif

}  // namespace speakerd_alsa
