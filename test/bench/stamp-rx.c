// An RTP receiver for the "play -> first packet" bench: reads every datagram on a 127.0.0.1 port it picks and
// prints, per packet, the time the kernel stamped it on arrival (SO_TIMESTAMPNS, CLOCK_REALTIME; on loopback the
// arrival runs in the sender's send() call, so this is the send time) and its RTP timestamp. A receiver thread's
// own wake-up after a dry spell is not in these figures, as it is in a user-space clock read after recvmsg().
//
//   cc -O2 -o stamp-rx stamp-rx.c; ./stamp-rx   ->  "port N" first, then "sec.nsec rtp-timestamp" per packet;
//   SIGTERM ends it (everything printed is flushed).
#include <arpa/inet.h>
#include <errno.h>
#include <linux/net_tstamp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

static volatile sig_atomic_t stop = 0;
static void onTerm(int sig) { (void)sig; stop = 1; }

int main(void) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = onTerm; // no SA_RESTART: recvmsg() returns EINTR
  sigaction(SIGTERM, &sa, NULL);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t alen = sizeof a;
  int on = 1;
  if (fd < 0 || bind(fd, (struct sockaddr*)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr*)&a, &alen) != 0 ||
      setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on) != 0) {
    perror("stamp-rx");
    return 1;
  }
  printf("port %d\n", ntohs(a.sin_port));
  fflush(stdout);
  setvbuf(stdout, NULL, _IOFBF, 1 << 20);
  unsigned char buf[2048];
  union { char b[CMSG_SPACE(sizeof(struct timespec))]; struct cmsghdr align; } ctrl;
  while (!stop) {
    struct iovec iov = {buf, sizeof buf};
    struct msghdr m;
    memset(&m, 0, sizeof m);
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = ctrl.b;
    m.msg_controllen = sizeof ctrl.b;
    ssize_t n = recvmsg(fd, &m, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 12) continue;
    struct timespec ts = {0, 0};
    for (struct cmsghdr* c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) memcpy(&ts, CMSG_DATA(c), sizeof ts);
    unsigned rtpTs = ((unsigned)buf[4] << 24) | ((unsigned)buf[5] << 16) | ((unsigned)buf[6] << 8) | buf[7];
    printf("%lld.%09ld %u\n", (long long)ts.tv_sec, ts.tv_nsec, rtpTs);
  }
  fflush(stdout);
  return 0;
}
