#include "threads.h"

#include <system_error>

#include "test_hooks.h"

namespace speakerd_alsa {

std::thread StartThread(std::function<void()> fn) {
  if (int err = TakeThreadFault()) throw std::system_error(err, std::generic_category(), "std::thread");
  return std::thread(std::move(fn));
}

}  // namespace speakerd_alsa
