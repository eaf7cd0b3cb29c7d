/*
 * Template mode (issue 13). A template VM boots with R_TEMPLATE in its spec and no workload: the
 * agent opens every port, waits until the kernel left its early clock source, writes T_TEMPLATE
 * on hull.status and waits on hull.run. The host pauses and saves the VM there. Every restored
 * clone resumes inside that wait and reads its own run spec (a T_RESUME frame) from hull.run: its
 * command, hostname, environment, mounts, wall clock and fresh random bytes come from there, never
 * from the template.
 *
 * hull.run is read non-blocking, with a bounded poll: a read() that blocked across the snapshot
 * (after a poll before it) was seen never to return once restored.
 */
#define _GNU_SOURCE
#include "snapshot.h"
#include "ports.h"
#include "proto.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

/* <linux/random.h> (not in musl's headers) */
#define RNDADDENTROPY _IOW('R', 0x03, int[2])
#define RNDRESEEDCRNG _IO('R', 0x07)
struct rand_pool_info { int entropy_count; int buf_size; uint32_t buf[]; };

unsigned spec_ports(const struct spec *s) {
  if (s->pod) return 1u << P_STATUS | 1u << P_CTL;
  return 1u << P_STATUS | 1u << P_STDOUT | 1u << P_STDERR | 1u << P_CTL | (s->mainport ? 1u << P_MAIN : 0) | (s->layer ? 1u << P_LAYER : 0);
}

/* Until the kernel switched from tsc-early (about 1 s of uptime), at most ~5 s. */
static void wait_clocksource(void) {
  struct timespec ms = {0, 20000000};
  for (int i = 0; i < 250; i++) {
    char cs[64] = "";
    FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource", "re");
    if (f) { if (!fgets(cs, sizeof cs, f)) cs[0] = 0; fclose(f); }
    if (cs[0] && strncmp(cs, "tsc-early", 9)) return;
    nanosleep(&ms, NULL);
  }
}

void resume_identity(const struct spec *s) {
  if (s->clock_ns) {
    struct timespec now = {.tv_sec = s->clock_ns / 1000000000ull, .tv_nsec = s->clock_ns % 1000000000ull};
    clock_settime(CLOCK_REALTIME, &now);
  }
  if (s->nrandom) {
    /* Firecracker's recipe for restored guests: credit fresh host bytes, then force a reseed of
     * the CRNG so that no clone hands out the template's stream */
    union { struct rand_pool_info i; uint8_t raw[sizeof(struct rand_pool_info) + sizeof s->random]; } r;
    r.i.entropy_count = (int)s->nrandom * 8;
    r.i.buf_size = (int)s->nrandom;
    memcpy(r.raw + sizeof(struct rand_pool_info), s->random, s->nrandom);
    int fd = open("/dev/urandom", O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
      ioctl(fd, RNDADDENTROPY, &r.i);
      ioctl(fd, RNDRESEEDCRNG);
      close(fd);
    }
  }
}

int template_wait(struct spec *s, char *msg, size_t msglen) {
  static uint8_t buf[FRAME_HEADER + FRAME_MAX_PAYLOAD];
  size_t have = 0;
  uint32_t len = 0;
  const char *err = NULL;
  if (ports_open((1u << NPORTS) - 1, msg, msglen)) return -1;
  int fd = ports[P_RUN].fd;
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  wait_clocksource();
  send_frame(P_STATUS, T_TEMPLATE, 0, NULL, 0);
  for (;;) {
    struct pollfd pf = {.fd = fd, .events = POLLIN};
    poll(&pf, 1, 50);
    ssize_t n = read(fd, buf + have, sizeof buf - have);
    if (n <= 0) continue; /* EAGAIN, or 0: no host end yet */
    have += n;
    if (have < FRAME_HEADER) continue;
    memcpy(&len, buf + 4, 4);
    if (buf[0] != PROTO_VERSION || buf[1] != T_RESUME || len > FRAME_MAX_PAYLOAD) { snprintf(msg, msglen, "template: bad frame on hull.run"); return -1; }
    if (have >= FRAME_HEADER + len) break;
  }
  spec_free(s);
  if (spec_parse(buf + FRAME_HEADER, len, s, &err)) { snprintf(msg, msglen, "run spec: %s", err); return -1; }
  resume_identity(s);
  unsigned need = spec_ports(s);
  for (int p = 0; p < NPORTS; p++) {
    if (ports[p].fd < 0) continue;
    if (!(need & (1u << p))) { close(ports[p].fd); ports[p].fd = -1; ports[p].connected = 0; continue; }
    /* the ports the agent reads: never a blocking read across a restore */
    if (p == P_CTL || p == P_MAIN) fcntl(ports[p].fd, F_SETFL, fcntl(ports[p].fd, F_GETFL) | O_NONBLOCK);
  }
  return 0;
}
