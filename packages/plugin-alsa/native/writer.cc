// The writer thread and its queue (see writer.h). The test build can make writes fail, make the writer sleep as
// if blocked in a write, or make the thread's creation fail (test_hooks.h).

#include "writer.h"

#include <pthread.h>
#include <sched.h>
#include <sys/prctl.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "library_log.h"
#include "test_hooks.h"
#include "threads.h"

namespace speakerd_alsa {

Writer::Writer(Config cfg, size_t frameBytes, size_t queueFrames, bool realtime, EventSink *sink)
    : cfg_(std::move(cfg)), fb_(frameBytes), sink_(sink), rtRequested_(realtime) {
  ring_.resize(queueFrames * fb_);
}

Writer::~Writer() { Stop(); }

void Writer::Start() {
  thread_ = StartThread([this] {
    SetRealtime();
    Run();
  });
  std::unique_lock<std::mutex> lk(mu_);
  cv_.wait(lk, [this] { return rtDone_; });
}

// ---------------------------------------------------------------- the event loop's side

void Writer::Open() {
  std::lock_guard<std::mutex> g(mu_);
  if (!quit_) {
    wantOpen_ = true;
    openPending_ = true;
    nextTry_ = std::chrono::steady_clock::now();
    cv_.notify_all();
  }
}

size_t Writer::Write(const uint8_t *src, size_t frames) {
  std::lock_guard<std::mutex> g(mu_);
  if (quit_ || !wantOpen_) return 0;
  size_t cap = ring_.size();
  size_t room = (cap - rsize_) / fb_;
  size_t n = std::min(frames, room);
  size_t bytes = n * fb_;
  size_t tail = (rhead_ + rsize_) % cap;
  size_t first = std::min(bytes, cap - tail);
  if (first) std::memcpy(ring_.data() + tail, src, first);
  if (bytes > first) std::memcpy(ring_.data(), src + first, bytes - first);
  rsize_ += bytes;
  if (n < frames) needRoom_ = true;
  if (n > 0) cv_.notify_all();
  return n;
}

// A query: it changes nothing (EndFill arms the "room" event).
size_t Writer::Writable() {
  std::lock_guard<std::mutex> g(mu_);
  if (quit_ || !wantOpen_) return 0;
  return (ring_.size() - rsize_) / fb_;
}

// The host has written what it will write for now. With the queue (nearly) full, the writer posts a "room" event
// once it has taken enough out of it (a short Write arms it too).
void Writer::EndFill() {
  std::lock_guard<std::mutex> g(mu_);
  if (!quit_ && wantOpen_ && (ring_.size() - rsize_) / fb_ < LowWater()) needRoom_ = true;
}

size_t Writer::Delay() {
  std::lock_guard<std::mutex> g(mu_);
  return QueuedLocked() + DeviceDelayLocked();
}

// Drop everything not yet audible; returns how many frames that was. The writer drops the device.
size_t Writer::Flush() {
  std::lock_guard<std::mutex> g(mu_);
  size_t dropped = QueuedLocked() + DeviceDelayLocked();
  rhead_ = rsize_ = 0;
  dropGen_++;
  delayFrames_ = 0;
  running_ = false;
  cv_.notify_all();
  return dropped;
}

// Play out what is queued, then (when close) release the device. Answered by a "drained" event.
void Writer::Drain(bool close) {
  std::lock_guard<std::mutex> g(mu_);
  wantDrain_ = true;
  drainClose_ = close;
  cv_.notify_all();
}

// Stop the writer (after playing out what is queued when drain). Answered by a "closed" event.
void Writer::Close(bool drain) {
  std::lock_guard<std::mutex> g(mu_);
  closeCalled_ = true;
  quit_ = true;
  if (drain) {
    wantDrain_ = true;
    drainClose_ = true;
  } else {
    abort_ = true;
  }
  cv_.notify_all();
}

bool Writer::Closing() {
  std::lock_guard<std::mutex> g(mu_);
  return closeCalled_;
}

StreamInfo Writer::Info() {
  std::lock_guard<std::mutex> g(mu_);
  return StreamInfo{phase_ == P_OPEN ? "open" : phase_ == P_LOST ? "lost" : "closed",
                    static_cast<double>(bufferFrames_),
                    static_cast<double>(periodFrames_),
                    static_cast<double>(QueuedLocked()),
                    static_cast<double>(ring_.size() / fb_),
                    static_cast<double>(DeviceDelayLocked()),
                    framesWritten_,
                    xruns_};
}

RealtimeInfo Writer::Realtime() {
  std::lock_guard<std::mutex> g(mu_);
  return RealtimeInfo{rtRequested_, rtErr_, rtRequested_ && slackErr_ == 0};
}

void Writer::Join() {
  if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void Writer::Shutdown() {
  {
    std::lock_guard<std::mutex> g(mu_);
    sinkLive_ = false;
  }
  Stop();
}

// ---------------------------------------------------------------- shared helpers (mu_ held)

size_t Writer::LowWater() const { return std::max<size_t>(1, std::min(periodFrames_ ? periodFrames_ : 256, ring_.size() / fb_ / 2)); }

size_t Writer::QueuedLocked() const {
  size_t q = rsize_ / fb_;
  if (igen_ == dropGen_ && ilen_ > ioff_) q += (ilen_ - ioff_) / fb_;
  return q;
}

// The device's delay as last sampled by the writer, less what has played since when it is running.
size_t Writer::DeviceDelayLocked() const {
  if (delayFrames_ <= 0) return 0;
  double d = static_cast<double>(delayFrames_);
  if (running_) {
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - delayAt_).count();
    d -= ms * cfg_.rate / 1000.0;
  }
  return d > 0 ? static_cast<size_t>(d) : 0;
}

// ---------------------------------------------------------------- writer thread

void Writer::Post(Event *e) {
  if (!sinkLive_) {
    delete e;
    return;
  }
  sink_->Post(e);
}
void Writer::Post(const char *type, int code, std::string text, double a, double b, std::string msg) {
  Post(new Event{type, code, std::move(text), a, b, std::move(msg)});
}
void Writer::Log(int level, std::string text) { Post("log", level, std::move(text)); }

// Sample the device delay (writer thread, mu_ NOT held); store it under the lock.
void Writer::SampleDelay(std::unique_lock<std::mutex> &lk) {
  snd_pcm_sframes_t d = 0;
  int st = lib.snd_pcm_state(pcm_);
  int err = lib.snd_pcm_delay(pcm_, &d);
  lk.lock();
  if (err >= 0) {
    delayFrames_ = d;
    delayAt_ = std::chrono::steady_clock::now();
    running_ = st == ST_RUNNING;
  }
}

void Writer::ClosePcm() {
  if (!pcm_) return;
  lib.snd_pcm_drop(pcm_);  // the file plugin writes out its buffer on drop, not on close
  lib.snd_pcm_close(pcm_);
  pcm_ = nullptr;
}

// The device failed: close it, report "lost", reopen with backoff (writer thread, mu_ held).
void Writer::Lose(std::unique_lock<std::mutex> &lk, int err, const char *doing) {
  lk.unlock();
  ClosePcm();
  lk.lock();
  phase_ = P_LOST;
  delayFrames_ = 0;
  running_ = false;
  backoffMs_ = 250;
  nextTry_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(backoffMs_);
  std::string msg = "device \"" + cfg_.device + "\" failed while " + doing + ": " + StrError(err) + "; reopening";
  if (!reportedLost_) {
    reportedLost_ = true;
    Post("state", -std::abs(err), "lost", 0, 0, msg);
  } else {
    Log(LOG_DEBUG, msg);
  }
}

// Recover from a write error the way MPD does (writer thread, mu_ held on entry and exit).
void Writer::Recover(std::unique_lock<std::mutex> &lk, int err) {
  if (err == -EPIPE) {
    xruns_++;
    lk.unlock();
    int r = lib.snd_pcm_prepare(pcm_);
    lk.lock();
    Post("xrun", 0, "underrun (xrun) on \"" + cfg_.device + "\": prepared and carrying on", xruns_);
    if (r < 0) Lose(lk, r, "recovering from an underrun");
    return;
  }
  if (err == -ESTRPIPE) {
    Post("state", 0, "recovering", 0, 0, "device \"" + cfg_.device + "\" is suspended; resuming");
    int r = -EAGAIN;
    for (int i = 0; i < 50 && !abort_; i++) {
      lk.unlock();
      r = lib.snd_pcm_resume(pcm_);
      lk.lock();
      if (r != -EAGAIN) break;
      cv_.wait_for(lk, std::chrono::milliseconds(100));
    }
    if (r < 0) {
      lk.unlock();
      r = lib.snd_pcm_prepare(pcm_);
      lk.lock();
    }
    if (r < 0) {
      Lose(lk, r, "resuming after a suspend");
      return;
    }
    if (!reportedLost_) Post("state", 0, "ok", 0, 0, "device \"" + cfg_.device + "\" resumed");
    return;
  }
  Lose(lk, err, "writing");
}

// Play out what the device holds (writer thread, mu_ held on entry and exit).
void Writer::DrainDevice(std::unique_lock<std::mutex> &lk) {
  uint64_t gen = dropGen_;
  double bufferMs = bufferFrames_ * 1000.0 / cfg_.rate;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<long>(bufferMs) + 2000);
  lk.unlock();
  snd_pcm_sframes_t d = 0;
  if (lib.snd_pcm_state(pcm_) == ST_PREPARED && lib.snd_pcm_delay(pcm_, &d) >= 0 && d > 0) lib.snd_pcm_start(pcm_);
  for (;;) {
    d = 0;
    int err = lib.snd_pcm_delay(pcm_, &d);
    int st = lib.snd_pcm_state(pcm_);
    if (err < 0 || d <= 0 || st != ST_RUNNING) break;
    lk.lock();
    delayFrames_ = d;
    delayAt_ = std::chrono::steady_clock::now();
    running_ = true;
    if (abort_ || dropGen_ != gen || std::chrono::steady_clock::now() > deadline) {
      lk.unlock();
      break;
    }
    double ms = std::min(50.0, std::max(1.0, d * 1000.0 / cfg_.rate));
    cv_.wait_for(lk, std::chrono::microseconds(static_cast<long>(ms * 1000)));
    lk.unlock();
  }
  lib.snd_pcm_drop(pcm_);  // also makes the file plugin write out its buffer
  lib.snd_pcm_prepare(pcm_);
  lk.lock();
  delayFrames_ = 0;
  running_ = false;
}

// On the writer thread itself, first thing: its name, and SCHED_FIFO (0 is the calling thread) and 1 ns timer
// slack when asked.
void Writer::SetRealtime() {
  pthread_setname_np(pthread_self(), "speakerd-alsa");
  int err = 0, slackErr = 0;
  if (rtRequested_) {
    if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) != 0) slackErr = errno;
    sched_param sp;
    std::memset(&sp, 0, sizeof sp);
    sp.sched_priority = 20;
    if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) != 0) err = errno;
  }
  std::lock_guard<std::mutex> g(mu_);
  rtErr_ = err;
  slackErr_ = slackErr;
  rtDone_ = true;
  cv_.notify_all();
}

void Writer::Run() {
  using clock = std::chrono::steady_clock;
  std::unique_lock<std::mutex> lk(mu_);
  uint64_t seenDrop = dropGen_;
  for (;;) {
    if (abort_) break;
    if (dropGen_ != seenDrop) {
      seenDrop = dropGen_;
      if (igen_ != dropGen_) ioff_ = ilen_ = 0;
      if (pcm_) {
        lk.unlock();
        lib.snd_pcm_drop(pcm_);
        lib.snd_pcm_prepare(pcm_);
        lk.lock();
        delayFrames_ = 0;
        running_ = false;
      }
      continue;
    }
    if (!pcm_) {
      if (wantDrain_) {
        // nothing to play out (closed, or the device is gone): what is queued is dropped
        wantDrain_ = false;
        if (rsize_ > 0 || ilen_ > ioff_) Log(LOG_WARN, "no device: dropped the queued audio");
        rhead_ = rsize_ = 0;
        ioff_ = ilen_ = 0;
        if (drainClose_) {
          wantOpen_ = false;
          phase_ = P_CLOSED;
        }
        Post("drained");
        if (quit_) break;
        continue;
      }
      if (quit_) break;
      if (!wantOpen_) {
        cv_.wait(lk);
        continue;
      }
      if (clock::now() < nextTry_) {
        cv_.wait_until(lk, nextTry_);
        continue;
      }
      Config c = cfg_;
      lk.unlock();
      snd_pcm_t *pcm = nullptr;
      OpenResult r = OpenPcm(c, true, &pcm);
      lk.lock();
      if (r.err == 0) {
        pcm_ = pcm;
        phase_ = P_OPEN;
        bufferFrames_ = r.bufferFrames;
        periodFrames_ = r.periodFrames;
        backoffMs_ = 0;
        attempts_ = 0;
        if (openPending_) {
          openPending_ = false;
          Post("open", 0, "", static_cast<double>(r.bufferFrames), static_cast<double>(r.periodFrames));
        }
        if (reportedLost_) {
          reportedLost_ = false;
          Post("state", 0, "ok", 0, 0, "device \"" + cfg_.device + "\" is back");
        }
        if (needRoom_) {
          needRoom_ = false;
          Post("room");
        }
        continue;
      }
      bool firstAttempt = openPending_;
      if (openPending_ && r.fatal) {
        // the device is there and refuses the format: retrying will not help
        openPending_ = false;
        wantOpen_ = false;
        phase_ = P_CLOSED;
        Post("open", r.err, r.message, 1, 0);
        continue;
      }
      phase_ = P_LOST;
      if (!reportedLost_) {
        reportedLost_ = true;
        Post("state", r.err, "lost", 0, 0, r.message + "; retrying");
      }
      if (openPending_) {
        openPending_ = false;
        Post("open", r.err, r.message, 0, 0);
      }
      backoffMs_ = backoffMs_ ? std::min(backoffMs_ * 2, 5000) : 250;
      attempts_++;
      // one line per attempt (the first is logged by the JS side, which hears the open's result)
      if (!firstAttempt)
        Log(LOG_INFO, r.message + "; retrying in " + std::to_string(backoffMs_) + " ms (attempt " +
                          std::to_string(attempts_) + ")");
      nextTry_ = clock::now() + std::chrono::milliseconds(backoffMs_);
      continue;
    }

    // ---- the device is open
    if (igen_ != dropGen_) ioff_ = ilen_ = 0;
    if (ioff_ >= ilen_ && rsize_ > 0) {
      size_t maxBytes = std::max<size_t>(bufferFrames_, 1024) * fb_;
      size_t take = std::min(rsize_, maxBytes);
      if (inflight_.size() < take) inflight_.resize(take);
      size_t first = std::min(take, ring_.size() - rhead_);
      std::memcpy(inflight_.data(), ring_.data() + rhead_, first);
      if (take > first) std::memcpy(inflight_.data() + first, ring_.data(), take - first);
      rhead_ = (rhead_ + take) % ring_.size();
      rsize_ -= take;
      if (rsize_ == 0) rhead_ = 0;
      ioff_ = 0;
      ilen_ = take;
      igen_ = dropGen_;
      if (needRoom_ && (ring_.size() - rsize_) / fb_ >= LowWater()) {
        needRoom_ = false;
        Post("room");
      }
    }
    if (ioff_ >= ilen_) {
      if (wantDrain_) {
        DrainDevice(lk);
        if (dropGen_ != seenDrop) continue;  // a flush came in meanwhile
        wantDrain_ = false;
        if (drainClose_) {
          lk.unlock();
          ClosePcm();
          lk.lock();
          phase_ = P_CLOSED;
          wantOpen_ = false;
        }
        Post("drained");
        if (quit_) break;
        continue;
      }
      lk.unlock();
      SampleDelay(lk);
      if (dropGen_ != seenDrop || abort_ || wantDrain_ || rsize_ > 0) continue;
      cv_.wait_for(lk, running_ ? std::chrono::milliseconds(std::max<long>(1, PeriodMs())) : std::chrono::milliseconds(1000));
      continue;
    }
    // test hook: the writer blocks as if stuck in a write
    if (int ms = TakeSleepFault()) {
      lk.unlock();
      std::this_thread::sleep_for(std::chrono::milliseconds(ms));
      lk.lock();
      continue;
    }
    uint64_t gen = igen_;
    const uint8_t *p = inflight_.data() + ioff_;
    snd_pcm_uframes_t frames = (ilen_ - ioff_) / fb_;
    snd_pcm_uframes_t want = std::min<snd_pcm_uframes_t>(frames, periodFrames_ ? periodFrames_ : frames);
    lk.unlock();
    snd_pcm_sframes_t r;
    snd_pcm_sframes_t avail = lib.snd_pcm_avail_update(pcm_);
    if (avail < 0) {
      r = avail;
    } else if (static_cast<snd_pcm_uframes_t>(avail) < want &&
               (avail == 0 || lib.snd_pcm_state(pcm_) == ST_RUNNING)) {
      // a stream that has not started yet takes what fits: filling the buffer is what starts it
      if (avail == 0 && lib.snd_pcm_state(pcm_) == ST_PREPARED) lib.snd_pcm_start(pcm_);
      // not enough room yet: sleep until about a period is free (flush and close wake us at once)
      double ms = (want - avail) * 1000.0 / cfg_.rate;
      ms = std::min(std::max(ms, 1.0), std::max(1.0, static_cast<double>(PeriodMs())));
      SampleDelay(lk);
      if (dropGen_ == seenDrop && !abort_) cv_.wait_for(lk, std::chrono::microseconds(static_cast<long>(ms * 1000)));
      continue;
    } else {
      snd_pcm_uframes_t n = std::min<snd_pcm_uframes_t>(frames, avail);
      int inj = TakeWriteFault();
      r = inj ? -inj : lib.snd_pcm_writei(pcm_, p, n);
    }
    if (r > 0) {
      SampleDelay(lk);
      framesWritten_ += r;
      if (gen == igen_ && igen_ == dropGen_) ioff_ += static_cast<size_t>(r) * fb_;
      continue;
    }
    lk.lock();
    if (r == 0 || r == -EAGAIN) {
      cv_.wait_for(lk, std::chrono::milliseconds(1));
      continue;
    }
    Recover(lk, static_cast<int>(r));
  }
  // leaving: release the device
  lk.unlock();
  ClosePcm();
  lk.lock();
  phase_ = P_CLOSED;
  wantOpen_ = false;
  if (sinkLive_) {
    Post("closed");
    sinkLive_ = false;
    sink_->Release();
  }
}

long Writer::PeriodMs() const { return static_cast<long>(periodFrames_ * 1000 / std::max(1u, cfg_.rate)); }

void Writer::Stop() {
  {
    std::lock_guard<std::mutex> g(mu_);
    quit_ = true;
    abort_ = true;
    cv_.notify_all();
  }
  if (thread_.joinable()) {
    if (thread_.get_id() == std::this_thread::get_id())
      thread_.detach();
    else
      thread_.join();
  }
}


}  // namespace speakerd_alsa
