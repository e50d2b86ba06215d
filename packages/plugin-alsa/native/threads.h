// Starting the addon's own threads (writer, probe): one place, so that a failed creation is a std::system_error
// the binding layer reports as SPEAKERD_ERR_ALSA_THREAD, and so that the test build can make it fail.
#pragma once

#include <functional>
#include <thread>

namespace speakerd_alsa {

// Throws std::system_error (EAGAIN when the system is out of threads or memory for a stack).
std::thread StartThread(std::function<void()> fn);

}  // namespace speakerd_alsa
