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
 *
 * A warm pool's guest (runtime/vm/pool.ts) gets a T_REHEARSE frame first: the agent rehearses a
 * run (rehearse() below), reports T_REHEARSED and waits on hull.run again, until the run that
 * claims the guest sends its T_RESUME.
 */
#define _GNU_SOURCE
#include "snapshot.h"
#include "net.h"
#include "ports.h"
#include "proto.h"
#include "rootfs.h"
#include "spawn.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/wait.h>
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
/* <linux/fs.h> */
#define BLKFLSBUF _IO(0x12, 97)

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

/*
 * A rehearsal of a run, in a warm pool's guest before it is claimed: the same root mounts
 * (erofs image, tmpfs and overlay, proc, sysfs, /dev), a process started and reaped, in a child
 * with a mount namespace of its own (the guest kernel has no UTS namespaces: the hostname is left
 * alone, the run sets its own). Under TCG the emulator translates guest code as it
 * first runs, and a restored guest starts with nothing translated: the rehearsal does that work
 * before the claim rather than in the run. Nothing of it stays: its mounts end with its
 * namespace, and once /dev/vda opens exclusively (no filesystem on it) its cached blocks are
 * dropped, since the claim puts the run's image under /dev/vda.
 */
static int rehearse(struct spec *r, char *msg, size_t msglen) {
  pid_t c = fork();
  if (c < 0) { snprintf(msg, msglen, "rehearsal: fork: %s", strerror(errno)); return -1; }
  if (c == 0) {
    char m[256];
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL)) _exit(120);
    if (restage_root(m, sizeof m) || enter_root(r, m, sizeof m)) _exit(121);
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    struct spawnreq q = {.argv = r->argv, .env = r->env, .cwd = r->cwd, .user = r->user, .hostname = r->hostname,
                         .stdio = {devnull, devnull, devnull}};
    int code = 0, st = 0;
    pid_t p = spawn_process(&q, &code, m, sizeof m);
    if (p < 0) _exit(122);
    if (waitpid(p, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) _exit(123);
    _exit(0);
  }
  int st = 0;
  if (waitpid(c, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st)) {
    snprintf(msg, msglen, "rehearsal: the run failed (%s %d)", WIFEXITED(st) ? "exit" : "signal", WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    return -1;
  }
  struct timespec ms = {0, 5000000};
  for (int i = 0;; i++) {
    int fd = open("/dev/vda", O_RDONLY | O_EXCL | O_CLOEXEC);
    if (fd >= 0) {
      int rc = ioctl(fd, BLKFLSBUF, 0);
      close(fd);
      if (rc) { snprintf(msg, msglen, "rehearsal: BLKFLSBUF: %s", strerror(errno)); return -1; }
      return 0;
    }
    if (errno != EBUSY || i >= 200) { snprintf(msg, msglen, "rehearsal: /dev/vda stays in use: %s", strerror(errno)); return -1; }
    nanosleep(&ms, NULL);
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
  /* what every run would do first and holds nothing of one: loopback up, the staged mounts */
  if (net_loopback()) { snprintf(msg, msglen, "template: loopback: %s", strerror(errno)); return -1; }
  if (stage_root(msg, msglen)) return -1;
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
    if (buf[0] != PROTO_VERSION || (buf[1] != T_RESUME && buf[1] != T_REHEARSE) || len > FRAME_MAX_PAYLOAD) { snprintf(msg, msglen, "template: bad frame on hull.run"); return -1; }
    if (have < FRAME_HEADER + len) continue;
    if (buf[1] == T_RESUME) break;
    /* a warm pool's rehearsal: run it, say how it went, wait on */
    struct spec r;
    char why[256] = "";
    memset(&r, 0, sizeof r);
    if (spec_parse(buf + FRAME_HEADER, len, &r, &err)) snprintf(why, sizeof why, "rehearsal spec: %s", err);
    else if (rehearse(&r, why, sizeof why) == 0) why[0] = 0;
    spec_free(&r);
    send_frame(P_STATUS, T_REHEARSED, 0, (const uint8_t *)why, strlen(why));
    have -= FRAME_HEADER + len;
    memmove(buf, buf + FRAME_HEADER + len, have);
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
