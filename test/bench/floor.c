// The floor: the least any sender that paces each packet on its own wake-up can do. Reads s16le stereo PCM,
// sends L16 RTP (PT 10, 360 frames a packet) to 127.0.0.1:PORT, each packet at its absolute deadline
// (clock_nanosleep TIMER_ABSTIME on CLOCK_MONOTONIC), one send() per packet. No RTCP, no checks.
//
// `floor --sinks N`: the bench's unread sinks instead. Binds N pairs of UDP sockets on 127.0.0.1 (an even port
// and the next one, RTP and RTCP), prints the even ports on one line, and then reads nothing until stdin closes:
// a sender's datagrams reach a socket that nobody wakes up for (the kernel drops them once its buffer is full).
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
static int sinks(int n) {
  for (int i = 0; i < n; i++) {
    for (;;) {
      int port = 20000 + 2 * (rand() % 20000);
      int a = socket(AF_INET, SOCK_DGRAM, 0), b = socket(AF_INET, SOCK_DGRAM, 0);
      struct sockaddr_in sa;
      memset(&sa, 0, sizeof sa);
      sa.sin_family = AF_INET;
      inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
      sa.sin_port = htons(port);
      int ok = bind(a, (struct sockaddr*)&sa, sizeof sa) == 0;
      sa.sin_port = htons(port + 1);
      ok = ok && bind(b, (struct sockaddr*)&sa, sizeof sa) == 0;
      if (ok) {
        printf("%s%d", i ? " " : "", port);
        break;
      }
      close(a);
      close(b);
    }
  }
  printf("\n");
  fflush(stdout);
  char c;
  while (read(0, &c, 1) > 0) {
  }
  return 0;
}
int main(int argc, char** argv) {
  if (argc == 3 && strcmp(argv[1], "--sinks") == 0) {
    srand((unsigned)time(NULL) ^ (unsigned)getpid());
    return sinks(atoi(argv[2]));
  }
  if (argc < 3) return 2;
  FILE* f = fopen(argv[2], "rb");
  if (!f) return 1;
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  uint8_t* pcm = malloc(len);
  if (!pcm || fread(pcm, 1, len, f) != (size_t)len) return 1;
  fclose(f);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(atoi(argv[1]));
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) < 0) return 1;
  enum { FRAMES = 360, RATE = 44100 };
  uint8_t pkt[12 + FRAMES * 4];
  uint16_t seq = 1;
  uint32_t ts = 1;
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  int64_t start = t0.tv_sec * 1000000000LL + t0.tv_nsec;
  long frames = len / 4;
  for (long done = 0; done < frames; done += FRAMES) {
    int64_t at = start + done * 1000000000LL / RATE;
    struct timespec d = {at / 1000000000LL, at % 1000000000LL};
    clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &d, NULL);
    long n = frames - done < FRAMES ? frames - done : FRAMES;
    pkt[0] = 0x80;
    pkt[1] = 10 | (done == 0 ? 0x80 : 0);
    pkt[2] = seq >> 8, pkt[3] = seq & 0xff;
    pkt[4] = ts >> 24, pkt[5] = ts >> 16, pkt[6] = ts >> 8, pkt[7] = ts;
    memset(pkt + 8, 0x5a, 4);
    const uint8_t* src = pcm + done * 4;
    for (long i = 0; i < n * 2; i++) pkt[12 + 2 * i] = src[2 * i + 1], pkt[13 + 2 * i] = src[2 * i];
    send(fd, pkt, 12 + n * 4, 0);
    seq++;
    ts += n;
  }
  return 0;
}
