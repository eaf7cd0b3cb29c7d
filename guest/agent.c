/*
 * hull-init: pid 1 of a hull VM. Boots the container root, runs the main process as its child,
 * serves exec requests, reports exit codes, and powers the VM off when the main process ends.
 * Protocol: guest/PROTOCOL.md. One thread, one poll loop; signals arrive through a signalfd.
 */
#define _GNU_SOURCE
#include "layer.h"
#include "logfmt.h"
#include "pod.h"
#include "ports.h"
#include "rootfs.h"
#include "snapshot.h"
#include "spawn.h"
#include "spec.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAXS 17               /* the main process (slot 0) + 16 exec sessions */
#define STDIN_HIGH (256 << 10) /* stop reading control ports while this much stdin is queued */

/* A running process and its streams. Slot 0 is the main process (channel 0). */
struct session {
  int used;
  uint16_t ch;
  int port;     /* control port it came from: output and exit go back there */
  pid_t pid;
  int out, err; /* read ends the agent forwards (-1: none or closed); for a tty, out is the master */
  int in;       /* write end of its stdin (-1: none or closed); for a tty, the master */
  int tty, reaped, status, in_eof;
  uint8_t *inbuf;
  size_t inlen;
};

static struct session S[MAXS];
static struct spec spec;

static void klog(const char *m) {
  int fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) { dprintf(fd, "hull-init: %s\n", m); close(fd); }
}

static void power_off(void) {
  sync();
  reboot(RB_AUTOBOOT); /* QEMU runs with -no-reboot: a reset ends it */
  for (;;) pause();
}

/* The kernel's count of OOM kills so far (/proc/vmstat), or 0. */
static long oom_kills(void) {
  char line[128];
  long n = 0;
  FILE *f = fopen("/proc/vmstat", "re");
  if (!f) return 0;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "oom_kill %ld", &n) == 1) break;
  fclose(f);
  return n;
}

/* R_LAYER: once nothing runs any more, the upper dir goes to the host on hull.layer, then
 * LAYER_SENT (or ERROR: why not) on hull.status, after the EXIT frame. */
static void send_exit_layer(void) {
  while (waitpid(-1, NULL, 0) > 0 || errno == EINTR) {}
  if (!layer_send(rootfs_upper_fd, ports[P_LAYER].fd)) send_frame(P_STATUS, T_LAYER_SENT, 0, NULL, 0);
  else send_frame(P_STATUS, T_ERROR, 0, layer_error, strlen(layer_error)); /* the host reports it */
}

/* Reports the main process's exit (code, OOM flag, optional reason) and powers off. */
static void finish(int code, int oom, const char *reason) {
  uint8_t buf[5 + 1024];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 1024) rl = 1024;
  int32_t c = code;
  memcpy(buf, &c, 4);
  buf[4] = oom ? EXIT_OOM : 0;
  if (rl) memcpy(buf + 5, reason, rl); /* not memcpy(.., NULL, 0): the compiler would take reason as non-NULL */
  kill(-1, SIGKILL); /* like a container: when the main process ends, everything ends */
  send_frame(P_STATUS, T_EXIT, 0, buf, 5 + rl);
  if (ports[P_MAIN].fd >= 0) send_frame(P_MAIN, T_EXIT, 0, buf, 5 + rl);
  if (spec.layer && !reason && (code == 0 || spec.layer == 2)) send_exit_layer();
  if (reason) klog(reason);
  power_off();
}

static int code_of(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static struct session *by_channel(int port, uint16_t ch) {
  if (ch == 0) return S[0].used ? &S[0] : NULL;
  for (int i = 1; i < MAXS; i++)
    if (S[i].used && S[i].ch == ch && S[i].port == port) return &S[i];
  return NULL;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void error_frame(int port, uint16_t ch, const char *m) {
  send_frame(port, T_ERROR, ch, m, strlen(m));
}

/* T_EXEC: a process in the running container, its output framed back on `port`. */
static void start_exec(int port, uint16_t ch, const uint8_t *data, uint32_t len) {
  struct spec x;
  const char *err;
  char msg[512];
  int slot = 0, code = 0, in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, master = -1, slave = -1;
  if (ch == 0 || by_channel(port, ch)) return error_frame(port, ch, "exec: channel 0 or already in use");
  for (int i = 1; i < MAXS && !slot; i++) if (!S[i].used) slot = i;
  if (!slot) return error_frame(port, ch, "exec: too many sessions");
  if (spec_parse(data, len, &x, &err)) return error_frame(port, ch, err);
  struct spawnreq r = {.argv = x.argv, .env = x.env, .cwd = x.cwd, .user = x.user, .hostname = spec.hostname, .tty = x.tty};
  if (x.tty) {
    struct winsize ws = {.ws_row = x.rows ? x.rows : 24, .ws_col = x.cols ? x.cols : 80};
    if (openpty(&master, &slave, NULL, NULL, &ws)) { spec_free(&x); return error_frame(port, ch, "exec: no pty"); }
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    r.stdio[0] = r.stdio[1] = r.stdio[2] = slave;
  } else {
    if ((x.stdin_open ? pipe2(in, O_CLOEXEC) : 0) || pipe2(out, O_CLOEXEC) || pipe2(er, O_CLOEXEC)) {
      spec_free(&x);
      return error_frame(port, ch, "exec: out of file descriptors");
    }
    r.stdio[0] = x.stdin_open ? in[0] : open("/dev/null", O_RDONLY | O_CLOEXEC);
    r.stdio[1] = out[1];
    r.stdio[2] = er[1];
  }
  pid_t pid = spawn_process(&r, &code, msg, sizeof msg);
  int tty = x.tty;
  if (tty) close(slave);
  else { close(r.stdio[0]); close(out[1]); close(er[1]); }
  spec_free(&x); /* x is zeroed from here on */
  if (pid < 0) {
    uint8_t buf[5 + 512] = {0};
    int32_t c = code;
    memcpy(buf, &c, 4);
    memcpy(buf + 5, msg, strlen(msg));
    close_fd(&master); close_fd(&in[1]); close_fd(&out[0]); close_fd(&er[0]);
    send_frame(port, T_EXIT, ch, buf, 5 + strlen(msg));
    return;
  }
  struct session *s = &S[slot];
  memset(s, 0, sizeof *s);
  *s = (struct session){.used = 1, .ch = ch, .port = port, .pid = pid, .tty = tty,
                        .out = tty ? master : out[0], .err = tty ? -1 : er[0], .in = tty ? dup(master) : in[1]};
  if (s->in >= 0) fcntl(s->in, F_SETFL, O_NONBLOCK | fcntl(s->in, F_GETFL));
}

static void queue_stdin(struct session *s, const uint8_t *d, uint32_t n) {
  if (s->in < 0 || s->in_eof) return;
  uint8_t *b = realloc(s->inbuf, s->inlen + n);
  if (!b) return;
  memcpy(b + s->inlen, d, n);
  s->inbuf = b;
  s->inlen += n;
}

static void on_frame(int port, const struct frame *f) {
  struct session *s = by_channel(port, f->channel);
  uint32_t u;
  switch (f->type) {
  case T_EXEC: start_exec(port, f->channel, f->data, f->len); break;
  case T_STDIN: if (s) queue_stdin(s, f->data, f->len); break;
  case T_STDIN_EOF:
    if (s) { s->in_eof = 1; if (!s->inlen && !s->tty) close_fd(&s->in); }
    break;
  case T_SIGNAL:
    if (s && f->len == 4 && !s->reaped) { memcpy(&u, f->data, 4); if (u > 0 && u < NSIG) kill(s->pid, u); }
    break;
  case T_RESIZE:
    if (s && s->tty && f->len == 4) {
      struct winsize ws = {0};
      memcpy(&ws.ws_row, f->data, 2);
      memcpy(&ws.ws_col, f->data + 2, 2);
      ioctl(s->out, TIOCSWINSZ, &ws);
    }
    break;
  case T_SHUTDOWN: if (S[0].used && !S[0].reaped) kill(S[0].pid, SIGTERM); break;
  case T_LAYER: /* guest/layer.c */
    if (f->channel) layer_serve(rootfs_upper_fd, port, f->channel, f->len >= 1 && (f->data[0] & LAYER_FREEZE));
    else error_frame(port, 0, "layer: channel 0");
    break;
  default: error_frame(port, f->channel, "unknown frame type"); break;
  }
}

/* Output of a session: raw to the stdout port for the main tty, framed for exec sessions. */
static void forward(struct session *s, int *fd, uint8_t type) {
  static uint8_t buf[FRAME_MAX_PAYLOAD];
  ssize_t n = read(*fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) { /* EOF, or EIO from a pty master whose slave side is gone */
    if (s->in == *fd) s->in = -1;
    close_fd(fd);
    return;
  }
  if (s == &S[0] && spec.logfmt) log_records(ports[P_STDOUT].fd, type == T_STDOUT ? "stdout" : "stderr", (char *)buf, n);
  else if (s == &S[0]) write_all(ports[P_STDOUT].fd, buf, n);
  else send_frame(s->port, type, s->ch, buf, n);
}

static void flush_stdin(struct session *s) {
  ssize_t n = write(s->in, s->inbuf, s->inlen);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) { s->inlen = 0; close_fd(&s->in); return; } /* EPIPE: the reader is gone */
  memmove(s->inbuf, s->inbuf + n, s->inlen - n);
  s->inlen -= n;
  if (!s->inlen && s->in_eof && !s->tty) close_fd(&s->in);
}

static void reap(void) {
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
    for (int i = 0; i < MAXS; i++)
      if (S[i].used && S[i].pid == pid && !S[i].reaped) { S[i].reaped = 1; S[i].status = st; }
}

/* Ends sessions whose process is gone and whose output is drained. */
static void retire(void) {
  for (int i = 1; i < MAXS; i++) {
    struct session *s = &S[i];
    if (!s->used || !s->reaped || s->out >= 0 || s->err >= 0) continue;
    uint8_t b[5] = {0};
    int32_t c = code_of(s->status);
    memcpy(b, &c, 4);
    send_frame(s->port, T_EXIT, s->ch, b, 5);
    if (s->in >= 0 && s->in != s->out) close(s->in);
    free(s->inbuf);
    memset(s, 0, sizeof *s);
  }
  static int rest_killed;
  if (S[0].used && S[0].reaped && !rest_killed) {
    /* as a container's pid 1: its end ends every other process (whose copies of its output
     * pipes or terminal would otherwise keep the run going), and then its output drains */
    kill(-1, SIGKILL);
    rest_killed = 1;
  }
  if (S[0].used && S[0].reaped && S[0].out < 0 && S[0].err < 0) {
    int st = S[0].status;
    finish(code_of(st), WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL && oom_kills() > 0, NULL);
  }
}

/* A control port lost its host: its exec sessions lose their streams, so they are killed. A
 * lost hull.main means the foreground host is gone: the run ends. */
static void host_gone(int port) {
  for (int i = 1; i < MAXS; i++)
    if (S[i].used && S[i].port == port && !S[i].reaped) kill(S[i].pid, SIGKILL);
  if (port == P_MAIN && S[0].used && !S[0].reaped) kill(S[0].pid, SIGKILL);
}

static void start_main(void) {
  char msg[512];
  int code = 0, in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, master = -1, slave = -1;
  struct spawnreq r = {.argv = spec.argv, .env = spec.env, .cwd = spec.cwd, .user = spec.user,
                       .hostname = spec.hostname, .tty = spec.tty};
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (spec.tty) {
    struct winsize ws = {.ws_row = spec.rows ? spec.rows : 24, .ws_col = spec.cols ? spec.cols : 80};
    if (openpty(&master, &slave, NULL, NULL, &ws)) finish(125, 0, "cannot allocate a pty");
    fcntl(master, F_SETFD, FD_CLOEXEC);
    fcntl(slave, F_SETFD, FD_CLOEXEC);
    r.stdio[0] = r.stdio[1] = r.stdio[2] = slave;
  } else {
    if (spec.stdin_open && pipe2(in, O_CLOEXEC)) finish(125, 0, "cannot create the stdin pipe");
    r.stdio[0] = spec.stdin_open ? in[0] : devnull;
    if (spec.logfmt && (pipe2(out, O_CLOEXEC) || pipe2(er, O_CLOEXEC))) finish(125, 0, "cannot create output pipes");
    r.stdio[1] = spec.logfmt ? out[1] : ports[P_STDOUT].fd; /* attached: straight to the port */
    r.stdio[2] = spec.logfmt ? er[1] : ports[P_STDERR].fd;
  }
  pid_t pid = spawn_process(&r, &code, msg, sizeof msg);
  if (pid < 0) finish(code, 0, msg);
  if (slave >= 0) close(slave);
  if (in[0] >= 0) close(in[0]);
  if (out[1] >= 0) { close(out[1]); close(er[1]); }
  close(devnull);
  S[0] = (struct session){.used = 1, .ch = 0, .port = P_MAIN, .pid = pid, .tty = spec.tty,
                          .out = spec.tty ? master : out[0], .err = spec.tty ? -1 : er[0],
                          .in = spec.tty ? (spec.stdin_open ? dup(master) : -1) : in[1]};
  if (S[0].in >= 0) fcntl(S[0].in, F_SETFL, O_NONBLOCK | fcntl(S[0].in, F_GETFL));
  struct utsname u;
  uint8_t buf[4 + sizeof u.release];
  uint32_t p = pid;
  uname(&u);
  memcpy(buf, &p, 4);
  memcpy(buf + 4, u.release, strlen(u.release));
  send_frame(P_STATUS, T_READY, 0, buf, 4 + strlen(u.release));
}

static void loop(int sfd) {
  for (;;) {
    struct pollfd pf[2 + NPORTS + 3 * MAXS];
    struct { struct session *s; int *fd; uint8_t type; int port; } what[2 + NPORTS + 3 * MAXS];
    int n = 0;
    size_t queued = 0;
    for (int i = 0; i < MAXS; i++) queued += S[i].inlen;
    pf[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
    what[n++].port = -1;
    for (int p = P_CTL; p <= P_MAIN; p++) {
      if (ports[p].fd < 0 || !ports[p].connected || queued > STDIN_HIGH) continue;
      pf[n] = (struct pollfd){.fd = ports[p].fd, .events = POLLIN};
      what[n++] = (typeof(what[0])){.port = p};
    }
    for (int i = 0; i < MAXS; i++) {
      struct session *s = &S[i];
      if (!s->used) continue;
      if (s->out >= 0) { pf[n] = (struct pollfd){.fd = s->out, .events = POLLIN}; what[n++] = (typeof(what[0])){s, &s->out, T_STDOUT, -2}; }
      if (s->err >= 0) { pf[n] = (struct pollfd){.fd = s->err, .events = POLLIN}; what[n++] = (typeof(what[0])){s, &s->err, T_STDERR, -2}; }
      if (s->in >= 0 && s->inlen) { pf[n] = (struct pollfd){.fd = s->in, .events = POLLOUT}; what[n++] = (typeof(what[0])){s, &s->in, 0, -3}; }
    }
    if (poll(pf, n, -1) < 0) continue;
    for (int i = 0; i < n; i++) {
      if (!pf[i].revents) continue;
      if (what[i].port == -1) {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si) {
          if (si.ssi_signo == SIGIO) /* a host connected or left: look again */
            for (int p = P_CTL; p <= P_MAIN; p++) if (ports[p].fd >= 0) ports[p].connected = 1;
        }
        reap();
      } else if (what[i].port >= 0) {
        int p = what[i].port;
        if ((pf[i].revents & POLLIN) ? port_read(p, on_frame) < 0 : (pf[i].revents & (POLLHUP | POLLERR)) != 0) {
          ports[p].connected = 0;
          host_gone(p);
        }
      } else if (what[i].port == -2) {
        forward(what[i].s, what[i].fd, what[i].type);
      } else if (what[i].s->in >= 0) {
        flush_stdin(what[i].s);
      }
    }
    reap();
    retire();
  }
}

int main(int argc, char **argv) {
  /* the process a warm pool's rehearsal starts (guest/snapshot.c): a copy of this binary */
  if (argc > 1 && strcmp(argv[1], "rehearsal") == 0) return 0;
  char msg[512];
  const char *err = NULL;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGCHLD);
  sigaddset(&set, SIGIO);
  sigaddset(&set, SIGPIPE);
  sigprocmask(SIG_BLOCK, &set, NULL);
  int sfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
  if (mount_early(msg, sizeof msg)) { klog(msg); power_off(); }
  int fd = open("/dev/null", O_RDWR); /* without a console, 0-2 are closed: fill them */
  while (fd >= 0 && fd < 3) fd = dup(fd);
  if (fd >= 3) close(fd);
  if (spec_load("/hull/spec", &spec, &err)) { klog(err); power_off(); }
  if (spec.template) { /* guest/snapshot.c: saved here; a restored clone returns with its run spec */
    if (template_wait(&spec, msg, sizeof msg)) { klog(msg); power_off(); }
  } else {
    resume_identity(&spec);
    if (ports_open(spec_ports(&spec), msg, sizeof msg)) { klog(msg); power_off(); }
  }
  if (spec.pod) {
    if (spec.hostname) sethostname(spec.hostname, strlen(spec.hostname));
    pod_main(&spec, sfd); /* never returns */
  }
  if (enter_root(&spec, msg, sizeof msg)) finish(125, 0, msg);
  if (spec.hostname) sethostname(spec.hostname, strlen(spec.hostname));
  if (net_up(&spec.net, msg, sizeof msg)) finish(125, 0, msg); /* guest/net.c */
  start_main();
  loop(sfd);
  return 0;
}
