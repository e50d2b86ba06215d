// speakerd rtp: native clock-out path. One sender thread per stream sends fully built RTP packets (JS builds
// them: sequence, timestamp, marker, SSRC) at their absolute deadlines on CLOCK_MONOTONIC, on its own connected
// UDP sockets (one per recipient). JS hands packets over in batches; the thread waits with
// pthread_cond_timedwait on a CLOCK_MONOTONIC condition variable (an absolute hrtimer deadline, like
// clock_nanosleep(TIMER_ABSTIME), but one that enqueue/flush/close can interrupt). The ring of packet slots is
// allocated once per format: nothing is allocated per packet. Send errors are counted and reported back through a
// ThreadSafeFunction at most every ERROR_REPORT_NS.
#include <napi.h>

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <string>
#include <vector>

#include "args.h"

using speakerd_rtp::Args;

namespace {

// The first error after a quiet second is reported at once, then at most one report a second (each wakes the main
// thread: a destination that refuses every packet costs one wake-up a second, not one per packet or four)
constexpr int64_t ERROR_REPORT_NS = 1'000'000'000;
constexpr uint32_t RTP_HEADER = 12;
// Real-time scheduling of the sender thread, when asked for (as MPD does for its output thread): SCHED_FIFO at
// this priority, not inherited by children (SCHED_RESET_ON_FORK), and 1 ns timer slack.
constexpr int RT_PRIORITY = 20;

int64_t MonoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

timespec ToTimespec(int64_t ns) {
  timespec ts;
  ts.tv_sec = ns / 1'000'000'000;
  ts.tv_nsec = ns % 1'000'000'000;
  return ts;
}

const char* ErrnoName(int e) {
  switch (e) {
    case ECONNREFUSED: return "ECONNREFUSED";
    case ENETUNREACH: return "ENETUNREACH";
    case EHOSTUNREACH: return "EHOSTUNREACH";
    case ENOBUFS: return "ENOBUFS";
    case EAGAIN: return "EAGAIN";
    case EMSGSIZE: return "EMSGSIZE";
    case EPERM: return "EPERM";
    case ESRCH: return "ESRCH";
    case EACCES: return "EACCES";
    case ENETDOWN: return "ENETDOWN";
    case EHOSTDOWN: return "EHOSTDOWN";
    case EINVAL: return "EINVAL";
    case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
    case ENOMEM: return "ENOMEM";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case ENODEV: return "ENODEV";
    default: return "EIO";
  }
}

struct Slot {
  int64_t deadline;  // CLOCK_MONOTONIC ns
  uint32_t len;
  uint32_t frames;
  uint32_t hostFrames;  // frames the host wrote (silence the backend made itself is not the host's)
};

struct Recipient {
  int id;
  int fd;
  std::string label;
};

struct ErrorReport {
  int err;
  double count;
  std::string to;
};

Napi::Error ErrnoError(Napi::Env env, int err, const std::string& what) {
  Napi::Error e = Napi::Error::New(env, what + ": " + strerror(err));
  e.Set("code", Napi::String::New(env, ErrnoName(err)));
  e.Set("errno", Napi::Number::New(env, err));
  return e;
}

class Sender : public Napi::ObjectWrap<Sender> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "Sender",
                       {
                           InstanceMethod("configure", &Sender::Configure),
                           InstanceMethod("addRecipient", &Sender::AddRecipient),
                           InstanceMethod("removeRecipient", &Sender::RemoveRecipient),
                           InstanceMethod("enqueue", &Sender::Enqueue),
                           InstanceMethod("flush", &Sender::Flush),
                           InstanceMethod("stats", &Sender::Stats),
                           InstanceMethod("close", &Sender::Close),
                           InstanceMethod("realtime", &Sender::Realtime),
                       });
  }

  explicit Sender(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Sender>(info) {
    Napi::Env env = info.Env();
    // Sender(onError, realtime): realtime true makes the thread ask for SCHED_FIFO and 1 ns timer slack. The
    // arguments are checked first: a bad one throws before anything is made (no lock, no thread to undo)
    Args args(info, "Sender(onError, realtime)", 2, 2);
    Napi::Function onError = args.Function(0);
    rtRequested_ = args.Boolean(1);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&cv_, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&mu_, nullptr);
    tsfn_ = Napi::ThreadSafeFunction::New(env, onError, "speakerd-rtp-errors", 0, 1);
    tsfn_.Unref(env);
    int rc = pthread_create(&thread_, nullptr, &Sender::ThreadMain, this);
    if (rc != 0) {
      tsfn_.Release();
      closed_ = true;
      ErrnoError(env, rc, "cannot start the sender thread").ThrowAsJavaScriptException();
      return;
    }
    started_ = true;
    // the thread says how its scheduling went before it waits for packets (two system calls: microseconds)
    pthread_mutex_lock(&mu_);
    while (!rtDone_) pthread_cond_wait(&cv_, &mu_);
    pthread_mutex_unlock(&mu_);
  }

  ~Sender() override {
    Shutdown();
    pthread_cond_destroy(&cv_);
    pthread_mutex_destroy(&mu_);
  }

 private:
  // ---------------------------------------------------------------------------------------------- JS methods

  // configure(slots, slotBytes): (re)allocate the ring; drops what is queued.
  Napi::Value Configure(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Args args(info, "configure(slots, slotBytes)", 2, 2);
    uint32_t slots = uint32_t(args.Integer(0, 1, 65536));
    uint32_t bytes = uint32_t(args.Integer(1, RTP_HEADER, 65535));
    std::vector<uint8_t> data(size_t(slots) * bytes);
    std::vector<Slot> ring(slots);
    pthread_mutex_lock(&mu_);
    data_.swap(data);
    ring_.swap(ring);
    slotBytes_ = bytes;
    head_ = count_ = 0;
    queuedFrames_ = queuedHost_ = 0;
    pthread_mutex_unlock(&mu_);
    return env.Undefined();
  }

  // addRecipient(address, port, delivery 0 unicast|1 multicast|2 broadcast, ttl, loop, iface, label) -> id
  Napi::Value AddRecipient(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Args args(info, "addRecipient(address, port, delivery, ttl, loop, iface, label)", 5, 7);
    std::string address = args.String(0);
    uint32_t port = uint32_t(args.Integer(1, 1, 65535));
    int delivery = int(args.Integer(2, 0, 2));
    int ttl = int(args.Integer(3, 0, 255));
    int loop = args.Boolean(4) ? 1 : 0;
    std::string iface = info.Length() > 5 ? args.OptionalString(5) : "";
    std::string label = info.Length() > 6 ? args.OptionalString(6) : "";
    if (label.empty()) label = address;
    {
      // a closed sender takes no socket at all (Shutdown() has closed the recipients: one opened now would leak)
      pthread_mutex_lock(&mu_);
      bool closed = closed_;
      pthread_mutex_unlock(&mu_);
      if (closed) return ThrowClosed(env);
    }

    addrinfo hints;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    std::string service = std::to_string(port);
    int gai = getaddrinfo(address.c_str(), service.c_str(), &hints, &res);
    if (gai != 0 || !res) {
      Napi::Error e = Napi::Error::New(env, "not an IP address: " + address + " (" + gai_strerror(gai) + ")");
      e.Set("code", Napi::String::New(env, "EINVAL"));
      e.ThrowAsJavaScriptException();
      return env.Undefined();
    }
    int family = res->ai_family;
    int fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) {
      int err = errno;
      freeaddrinfo(res);
      ErrnoError(env, err, "socket").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    auto fail = [&](const char* what) {
      int err = errno;
      close(fd);
      freeaddrinfo(res);
      ErrnoError(env, err, what).ThrowAsJavaScriptException();
      return env.Undefined();
    };
    if (delivery == 1) {
      if (family == AF_INET) {
        unsigned char t = (unsigned char)ttl, l = (unsigned char)loop;
        if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &t, sizeof t) < 0) return fail("IP_MULTICAST_TTL");
        if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &l, sizeof l) < 0) return fail("IP_MULTICAST_LOOP");
        if (!iface.empty()) {
          in_addr a;
          if (inet_pton(AF_INET, iface.c_str(), &a) != 1) {
            errno = EINVAL;
            return fail("rtp.interface is not an IPv4 address");
          }
          if (setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &a, sizeof a) < 0) return fail("IP_MULTICAST_IF");
        }
      } else {
        int hops = ttl;
        unsigned int l = (unsigned int)loop;
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops) < 0)
          return fail("IPV6_MULTICAST_HOPS");
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &l, sizeof l) < 0) return fail("IPV6_MULTICAST_LOOP");
        if (!iface.empty()) {
          // "::%eth0", "%eth0", "eth0" or an interface index
          std::string name = iface;
          size_t pct = name.find('%');
          if (pct != std::string::npos) name = name.substr(pct + 1);
          unsigned int index = if_nametoindex(name.c_str());
          if (index == 0) {
            char* end = nullptr;
            unsigned long n = strtoul(name.c_str(), &end, 10);
            if (end && *end == 0 && !name.empty()) index = (unsigned int)n;
          }
          if (index == 0) {
            errno = ENODEV;
            return fail("rtp.interface: no such interface");
          }
          if (setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &index, sizeof index) < 0)
            return fail("IPV6_MULTICAST_IF");
        }
      }
    } else if (delivery == 2) {
      int on = 1;
      if (setsockopt(fd, SOL_SOCKET, SO_BROADCAST, &on, sizeof on) < 0) return fail("SO_BROADCAST");
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0) return fail("connect");
    freeaddrinfo(res);
    pthread_mutex_lock(&mu_);
    if (closed_) {
      // Shutdown() has closed the recipients already: this socket would never be closed
      pthread_mutex_unlock(&mu_);
      close(fd);
      return ThrowClosed(env);
    }
    int id = nextId_++;
    recipients_.push_back(Recipient{id, fd, label});
    pthread_mutex_unlock(&mu_);
    return Napi::Number::New(env, id);
  }

  Napi::Value RemoveRecipient(const Napi::CallbackInfo& info) {
    Args args(info, "removeRecipient(id)", 1, 1);
    int id = int(args.Integer(0, 0, INT32_MAX));
    bool found = false;
    pthread_mutex_lock(&mu_);
    for (size_t i = 0; i < recipients_.size(); i++) {
      if (recipients_[i].id != id) continue;
      close(recipients_[i].fd);
      recipients_.erase(recipients_.begin() + i);
      found = true;
      break;
    }
    pthread_mutex_unlock(&mu_);
    return Napi::Boolean::New(info.Env(), found);
  }

  // enqueue(ring: Uint8Array, headers: Uint8Array (12 bytes a packet), meta: Float64Array, first, n)
  //   meta per packet (META = 6): [deadlineMs, offset, len1, len2, frames, hostFrames]: the payload is len1 bytes
  //   of `ring` at `offset` followed by len2 bytes of `ring` from 0 (the JS ring wraps), or len1 zero bytes
  //   (silence) when offset is -1. Packets first .. first + n - 1 are copied, header and payload, straight into
  //   the thread's slots: one copy per packet, from the JS ring. -> packets accepted (all unless the ring is full)
  Napi::Value Enqueue(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Args args(info, "enqueue(ring, headers, meta, first, count)", 5, 5);
    auto ring = args.Typed<Napi::Uint8Array>(0, napi_uint8_array, "a Uint8Array");
    auto headers = args.Typed<Napi::Uint8Array>(1, napi_uint8_array, "a Uint8Array");
    auto meta = args.Typed<Napi::Float64Array>(2, napi_float64_array, "a Float64Array");
    uint32_t first = uint32_t(args.Integer(3, 0, UINT32_MAX));
    uint32_t n = uint32_t(args.Integer(4, 0, UINT32_MAX));
    constexpr size_t M = 6;
    size_t metaLen = meta.ElementLength() / M;
    size_t hdrLen = headers.ByteLength() / RTP_HEADER;
    if (first >= metaLen || first >= hdrLen) return Napi::Number::New(env, 0);
    if (size_t(first) + n > metaLen) n = uint32_t(metaLen - first);
    if (size_t(first) + n > hdrLen) n = uint32_t(hdrLen - first);
    const uint8_t* src = ring.Data();
    size_t srcLen = ring.ByteLength();
    const uint8_t* hdr = headers.Data();
    const double* m = meta.Data();
    // Copy outside the lock, into free slots the thread does not look at until count_ says so: the thread never
    // waits for this copy (a main thread descheduled while holding the lock would delay a send). Only this (the
    // JS) thread adds, flushes or reconfigures, so the free slots stay free until published below.
    pthread_mutex_lock(&mu_);
    size_t slots = ring_.size();
    size_t tail = slots ? (head_ + count_) % slots : 0;
    size_t room = closed_ ? 0 : slots - count_;
    uint32_t slotBytes = slotBytes_;
    pthread_mutex_unlock(&mu_);
    uint32_t accepted = 0;
    uint64_t frames = 0, host = 0;
    for (uint32_t j = 0; j < n && accepted < room; j++) {
      const double* e = m + size_t(first + j) * M;
      double off = e[1];
      size_t len1 = size_t(e[2]), len2 = size_t(e[3]);
      size_t len = RTP_HEADER + len1 + len2;
      if (len > slotBytes) break;
      if (off >= 0 ? size_t(off) + len1 > srcLen || len2 > srcLen : len2 != 0) break;
      size_t at = (tail + accepted) % slots;
      Slot& s = ring_[at];
      s.deadline = int64_t(e[0] * 1e6);
      s.len = uint32_t(len);
      s.frames = uint32_t(e[4]);
      s.hostFrames = uint32_t(e[5]);
      uint8_t* dst = &data_[at * slotBytes];
      memcpy(dst, hdr + size_t(first + j) * RTP_HEADER, RTP_HEADER);
      if (off >= 0) {
        memcpy(dst + RTP_HEADER, src + size_t(off), len1);
        if (len2) memcpy(dst + RTP_HEADER + len1, src, len2);
      } else {
        memset(dst + RTP_HEADER, 0, len1);
      }
      frames += s.frames;
      host += s.hostFrames;
      accepted++;
    }
    if (accepted > 0) {
      pthread_mutex_lock(&mu_);
      bool wasEmpty = count_ == 0;
      count_ += accepted;
      queuedFrames_ += frames;
      queuedHost_ += host;
      if (wasEmpty) pthread_cond_signal(&cv_);
      pthread_mutex_unlock(&mu_);
    }
    return Napi::Number::New(env, accepted);
  }

  // flush(out: Float64Array) -> packets dropped; out = [packets, frames, hostFrames, firstHadMarker]
  Napi::Value Flush(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Args args(info, "flush(out)", 1, 1);
    auto out = args.Typed<Napi::Float64Array>(0, napi_float64_array, "a Float64Array", 4);
    double packets, frames, host, marker = 0;
    pthread_mutex_lock(&mu_);
    packets = double(count_);
    frames = double(queuedFrames_);
    host = double(queuedHost_);
    if (count_ > 0 && ring_[head_].len > 1 && (data_[head_ * slotBytes_ + 1] & 0x80)) marker = 1;
    head_ = count_ = 0;
    queuedFrames_ = queuedHost_ = 0;
    pthread_cond_signal(&cv_);
    pthread_mutex_unlock(&mu_);
    out[0] = packets;
    out[1] = frames;
    out[2] = host;
    out[3] = marker;
    return Napi::Number::New(env, packets);
  }

  // stats(out: Float64Array): [queuedPackets, queuedFrames, queuedHostFrames, sentPackets, sentOctets,
  //   lastSentMs (monotonic), freeSlots, sendErrors, nowMs (monotonic)]
  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Args args(info, "stats(out)", 1, 1);
    auto out = args.Typed<Napi::Float64Array>(0, napi_float64_array, "a Float64Array", 9);
    pthread_mutex_lock(&mu_);
    out[0] = double(count_);
    out[1] = double(queuedFrames_);
    out[2] = double(queuedHost_);
    out[3] = double(sentPackets_);
    out[4] = double(sentOctets_);
    out[5] = double(lastSentNs_) / 1e6;
    out[6] = double(ring_.size() - count_);
    out[7] = double(sendErrors_);
    pthread_mutex_unlock(&mu_);
    out[8] = double(MonoNs()) / 1e6;
    return info.Env().Undefined();
  }

  // realtime() -> {requested, ok, errno, code, message, timerSlack}: how the thread's real-time scheduling went
  // (set by the thread before the constructor returned; read under the lock all the same)
  Napi::Value Realtime(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Args(info, "realtime()", 0, 0);
    pthread_mutex_lock(&mu_);
    bool requested = rtRequested_;
    int err = rtErr_, slackErr = slackErr_;
    pthread_mutex_unlock(&mu_);
    Napi::Object o = Napi::Object::New(env);
    o.Set("requested", requested);
    o.Set("ok", requested && err == 0);
    o.Set("errno", err);
    o.Set("code", err ? ErrnoName(err) : "");
    o.Set("message", err ? strerror(err) : "");
    o.Set("timerSlack", requested && slackErr == 0);
    return o;
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    Args(info, "close()", 0, 0);
    Shutdown();
    return info.Env().Undefined();
  }

  static Napi::Value ThrowClosed(Napi::Env env) {
    Napi::Error e = Napi::Error::New(env, "the sender is closed");
    e.Set("code", Napi::String::New(env, "ECLOSED"));
    throw e;
  }

  // ---------------------------------------------------------------------------------------------- thread

  void Shutdown() {
    pthread_mutex_lock(&mu_);
    if (closed_) {
      pthread_mutex_unlock(&mu_);
      return;
    }
    closed_ = true;
    head_ = count_ = 0;
    queuedFrames_ = queuedHost_ = 0;
    pthread_cond_signal(&cv_);
    pthread_mutex_unlock(&mu_);
    if (started_) pthread_join(thread_, nullptr);
    started_ = false;
    for (auto& r : recipients_) close(r.fd);
    recipients_.clear();
    tsfn_.Release();
  }

  static void* ThreadMain(void* self) {
    static_cast<Sender*>(self)->Run();
    return nullptr;
  }

  // On the sender thread itself, first thing: SCHED_FIFO (0 is the calling thread) and 1 ns timer slack, when asked.
  void SetRealtime() {
    int err = 0, slackErr = 0;
    if (rtRequested_) {
      if (prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL) != 0) slackErr = errno;
      sched_param sp;
      memset(&sp, 0, sizeof sp);
      sp.sched_priority = RT_PRIORITY;
      if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) != 0) err = errno;
    }
    pthread_mutex_lock(&mu_);
    rtErr_ = err;
    slackErr_ = slackErr;
    rtDone_ = true;
    pthread_cond_broadcast(&cv_);
    pthread_mutex_unlock(&mu_);
  }

  void Run() {
    pthread_setname_np(pthread_self(), "speakerd-rtp");
    SetRealtime();
    pthread_mutex_lock(&mu_);
    while (!closed_) {
      if (count_ == 0) {
        if (pendingErrors_ > 0) ReportErrors(MonoNs(), true);
        pthread_cond_wait(&cv_, &mu_);
        continue;
      }
      const Slot& s = ring_[head_];
      int64_t now = MonoNs();
      if (s.deadline > now) {
        timespec at = ToTimespec(s.deadline);
        pthread_cond_timedwait(&cv_, &mu_, &at);
        continue;  // re-check: flushed, closed, or due
      }
      const uint8_t* p = &data_[head_ * slotBytes_];
      for (size_t i = 0; i < recipients_.size(); i++) {
        ssize_t r = send(recipients_[i].fd, p, s.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r < 0) {
          int err = errno;
          if (err == ECONNREFUSED) {
            // the error belonged to an earlier datagram (ICMP); this one was not sent: try once more
            r = send(recipients_[i].fd, p, s.len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (r >= 0) {
              NoteError(err, i);
              continue;
            }
            err = errno;
          }
          NoteError(err, i);
        }
      }
      sentPackets_++;
      sentOctets_ += s.len > RTP_HEADER ? s.len - RTP_HEADER : 0;
      lastSentNs_ = now;
      queuedFrames_ -= s.frames;
      queuedHost_ -= s.hostFrames;
      head_ = (head_ + 1) % ring_.size();
      count_--;
      if (pendingErrors_ > 0) ReportErrors(now, false);
    }
    pthread_mutex_unlock(&mu_);
  }

  void NoteError(int err, size_t recipient) {
    sendErrors_++;
    pendingErrors_++;
    lastErr_ = err;
    lastErrRecipient_ = recipient;
  }

  // with mu_ held
  void ReportErrors(int64_t now, bool force) {
    if (!force && now - lastReportNs_ < ERROR_REPORT_NS) return;
    auto* rep = new ErrorReport{lastErr_, double(pendingErrors_),
                                lastErrRecipient_ < recipients_.size() ? recipients_[lastErrRecipient_].label : ""};
    pendingErrors_ = 0;
    lastReportNs_ = now;
    napi_status st = tsfn_.NonBlockingCall(rep, [](Napi::Env env, Napi::Function fn, ErrorReport* r) {
      if (env != nullptr && fn != nullptr) {
        fn.Call({Napi::String::New(env, ErrnoName(r->err)), Napi::Number::New(env, r->err),
                 Napi::Number::New(env, r->count), Napi::String::New(env, r->to),
                 Napi::String::New(env, strerror(r->err))});
      }
      delete r;
    });
    if (st != napi_ok) delete rep;
  }

  pthread_mutex_t mu_;
  pthread_cond_t cv_;
  pthread_t thread_{};
  bool started_ = false;
  bool closed_ = false;
  Napi::ThreadSafeFunction tsfn_;
  bool rtRequested_ = false;
  bool rtDone_ = false;
  int rtErr_ = 0;
  int slackErr_ = 0;

  std::vector<uint8_t> data_;
  std::vector<Slot> ring_;
  uint32_t slotBytes_ = 0;
  size_t head_ = 0;
  size_t count_ = 0;
  uint64_t queuedFrames_ = 0;
  uint64_t queuedHost_ = 0;

  std::vector<Recipient> recipients_;
  int nextId_ = 1;

  uint64_t sentPackets_ = 0;
  uint64_t sentOctets_ = 0;
  int64_t lastSentNs_ = 0;
  uint64_t sendErrors_ = 0;
  uint64_t pendingErrors_ = 0;
  int lastErr_ = 0;
  size_t lastErrRecipient_ = 0;
  int64_t lastReportNs_ = INT64_MIN / 2;
};

Napi::Value NowMs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), double(MonoNs()) / 1e6);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("Sender", Sender::Init(env));
  exports.Set("nowMs", Napi::Function::New(env, NowMs));
  // 2: enqueue(ring, headers, meta, first, n) copies each payload from the JS ring (META 6)
  exports.Set("abi", Napi::Number::New(env, 2));
  return exports;
}

}  // namespace

NODE_API_MODULE(speakerd_rtp, Init)
