// One PCM stream and its writer thread, without JavaScript: the bounded queue the event loop fills, the thread
// that owns the snd_pcm_t and moves frames into it, and recovery. The binding layer (binding_stream.cc) wraps it.
//
// - The PCM is opened non-blocking and the writer writes at most what snd_pcm_avail_update() says fits, so it
//   can be woken at once (flush, close) instead of sitting in a blocking write.
// - The queue's mutex is held only for memcpy and bookkeeping: the event loop never waits for the device.
// - Recovery as MPD does it: EPIPE (xrun) -> prepare; ESTRPIPE (suspend) -> resume, else prepare; anything else
//   (ENODEV, EBUSY, EBADFD, EIO, ...) -> close, report "lost", reopen with backoff, report "ok" when back.
// - Real-time scheduling when asked for, as MPD does for its output thread: the writer sets SCHED_FIFO priority
//   20 (SCHED_RESET_ON_FORK) and 1 ns timer slack on itself; Realtime() says how that went.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "pcm.h"

namespace speakerd_alsa {

// What the writer tells JavaScript: open, state, room, drained, closed, log, xrun.
struct Event {
  std::string type;
  int code = 0;
  std::string text;
  double a = 0, b = 0;
  std::string msg;
};

// Where events go. Post is called on the writer thread with the writer's lock held and takes the event;
// Release once, by the writer thread when it ends (not after Writer::Shutdown).
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void Post(Event *e) = 0;
  virtual void Release() = 0;
};

struct StreamInfo {
  const char *phase;
  double bufferFrames, periodFrames, queuedFrames, capacityFrames, deviceDelayFrames, framesWritten, xruns;
};

struct RealtimeInfo {
  bool requested;
  int err;  // errno of sched_setscheduler, 0 = ok
  bool timerSlack;
};

class Writer {
 public:
  Writer(Config cfg, size_t frameBytes, size_t queueFrames, bool realtime, EventSink *sink);
  ~Writer();
  Writer(const Writer &) = delete;
  Writer &operator=(const Writer &) = delete;

  // Start the thread; returns once it has said how its scheduling went (two system calls: microseconds).
  // Throws std::system_error when the thread cannot be created (nothing started then).
  void Start();

  // ---- the event loop's side
  void Open();
  size_t Write(const uint8_t *src, size_t frames);  // frames taken
  size_t Writable();                                 // room in the queue, frames
  void EndFill();
  size_t Delay();
  size_t Flush();  // frames dropped
  void Drain(bool close);
  void Close(bool drain);
  bool Closing();  // Close() was called
  StreamInfo Info();
  RealtimeInfo Realtime();
  // After the "closed" event: reap the thread.
  void Join();
  // The environment is going away: no more events, stop at once, release the device, join.
  void Shutdown();

 private:
  size_t LowWater() const;
  size_t QueuedLocked() const;
  size_t DeviceDelayLocked() const;
  long PeriodMs() const;
  void Post(Event *e);
  void Post(const char *type, int code = 0, std::string text = "", double a = 0, double b = 0, std::string msg = "");
  void Log(int level, std::string text);
  void SampleDelay(std::unique_lock<std::mutex> &lk);
  void ClosePcm();
  void Lose(std::unique_lock<std::mutex> &lk, int err, const char *doing);
  void Recover(std::unique_lock<std::mutex> &lk, int err);
  void DrainDevice(std::unique_lock<std::mutex> &lk);
  void SetRealtime();
  void Run();
  void Stop();

  enum Phase { P_CLOSED, P_OPEN, P_LOST };
  Config cfg_;
  size_t fb_;
  EventSink *sink_;
  bool sinkLive_ = true;
  std::mutex mu_;
  std::condition_variable cv_;
  std::thread thread_;
  // real-time scheduling: asked for, and how it went (errno, 0 = ok), set by the writer under mu_
  bool rtRequested_ = false, rtDone_ = false;
  int rtErr_ = 0, slackErr_ = 0;
  // the bounded queue (JS -> writer)
  std::vector<uint8_t> ring_;
  size_t rhead_ = 0, rsize_ = 0;
  // the chunk being written (writer only, except the counters read under mu_)
  std::vector<uint8_t> inflight_;
  size_t ioff_ = 0, ilen_ = 0;
  uint64_t igen_ = 0, dropGen_ = 0;
  // requests
  bool wantOpen_ = false, openPending_ = false, wantDrain_ = false, drainClose_ = false, quit_ = false,
       abort_ = false, needRoom_ = false, closeCalled_ = false;
  // device
  snd_pcm_t *pcm_ = nullptr;
  Phase phase_ = P_CLOSED;
  bool reportedLost_ = false;
  int backoffMs_ = 0;
  int attempts_ = 0;
  std::chrono::steady_clock::time_point nextTry_;
  snd_pcm_uframes_t bufferFrames_ = 0, periodFrames_ = 0;
  long delayFrames_ = 0;
  std::chrono::steady_clock::time_point delayAt_;
  bool running_ = false;
  double framesWritten_ = 0;
  double xruns_ = 0;
};

}  // namespace speakerd_alsa
