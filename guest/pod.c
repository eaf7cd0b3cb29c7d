/*
 * Pod mode: the containers of one pod in one VM (guest/PROTOCOL.md, "Pod mode"). The host mounts
 * each container's root filesystem (containerd's overlay) into the virtio-fs share; this agent
 * binds it at /run/c/<channel>, adds /sys, a container /dev, the pod's shared /dev/shm and the
 * container's bind and tmpfs mounts, and starts the process chrooted there as pid 1 of a new pid
 * namespace (which mounts the container's /proc), as in a container: signals it has no handler for
 * are not delivered, and its end kills everything left in it. Exec sessions join that namespace.
 * A process belongs to a container when its root (/proc/PID/root) lies in that container's
 * directory. OOM kills are read from /dev/kmsg and reported per container.
 * One thread, one poll loop, every frame on hull.ctl.
 */
#define _GNU_SOURCE
#include "pod.h"
#include "ports.h"
#include "rootfs.h"
#include "spawn.h"
#include <dirent.h>
#include <net/if.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sched.h>
#include <sys/reboot.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAXP 64                /* processes the host can run at once: containers + exec sessions */
#define MAXC 32                /* containers in the pod (running or exited, not yet removed) */
#define STDIN_HIGH (256 << 10) /* stop reading hull.ctl while this much stdin is queued */
#define SHARE "/run/pod"
#define PODSHM "/run/pod-shm"

struct proc {
  int used;
  uint16_t ch, ctr; /* its channel; the channel of its container (== ch for a container's first process) */
  pid_t pid;
  int out, err, in; /* as in agent.c: read ends forwarded, write end of stdin; a tty's master */
  int tty, reaped, status, in_eof, oom;
  uint8_t *inbuf;
  size_t inlen;
};

struct ctr {
  int used;
  uint16_t ch;
  int exited; /* its first process ended: EXIT sent, root still mounted until REMOVE */
  int oom;
};

static struct proc P[MAXP];
static struct ctr C[MAXC];
static const struct spec *pod;
static int kmsg = -1;
static int own_pidns = -1; /* the agent's pid namespace, to return to after spawning into another */

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void error_frame(uint16_t ch, const char *m) { send_frame(P_CTL, T_ERROR, ch, m, strlen(m)); }

static void exit_frame(uint16_t ch, int code, int oom, const char *reason) {
  uint8_t b[5 + 512];
  size_t rl = reason ? strlen(reason) : 0;
  if (rl > 512) rl = 512;
  int32_t c = code;
  memcpy(b, &c, 4);
  b[4] = oom ? EXIT_OOM : 0;
  if (rl) memcpy(b + 5, reason, rl);
  send_frame(P_CTL, T_EXIT, ch, b, 5 + rl);
}

static void power_off(void) {
  kill(-1, SIGKILL);
  sync();
  reboot(RB_AUTOBOOT); /* QEMU runs with -no-reboot: a reset ends it */
  for (;;) pause();
}

static struct ctr *ctr_of(uint16_t ch) {
  for (int i = 0; i < MAXC; i++) if (C[i].used && C[i].ch == ch) return &C[i];
  return NULL;
}

static struct proc *proc_of(uint16_t ch) {
  for (int i = 0; i < MAXP; i++) if (P[i].used && P[i].ch == ch) return &P[i];
  return NULL;
}

static void root_dir(uint16_t ch, char *buf, size_t n) { snprintf(buf, n, "/run/c/%u", ch); }

static void mkdir_p(const char *path) {
  char b[4096];
  snprintf(b, sizeof b, "%s", path);
  for (char *p = b + 1; *p; p++)
    if (*p == '/') { *p = 0; mkdir(b, 0755); *p = '/'; }
  mkdir(b, 0755);
}

/* A path relative to the share: no "..", not absolute, not empty. */
static int share_path_ok(const char *p) {
  if (!*p || *p == '/') return 0;
  for (const char *s = p; (s = strstr(s, "..")); s += 2)
    if ((s == p || s[-1] == '/') && (s[2] == 0 || s[2] == '/')) return 0;
  return 1;
}

/* The container a process belongs to: the channel whose /run/c/<ch> holds its root, walking up
 * to the parent for a zombie (which has no root any more). 0 = none. */
static uint16_t ctr_of_pid(pid_t pid) {
  for (int depth = 0; pid > 1 && depth < 64; depth++) {
    char p[64], root[256];
    snprintf(p, sizeof p, "/proc/%d/root", pid);
    ssize_t n = readlink(p, root, sizeof root - 1);
    if (n > 0) {
      root[n] = 0;
      unsigned ch;
      char rest = '/';
      int k = sscanf(root, "/run/c/%u%c", &ch, &rest);
      return k >= 1 && rest == '/' && ch > 0 && ch < 65536 && ctr_of(ch) ? ch : 0;
    }
    snprintf(p, sizeof p, "/proc/%d/stat", pid);
    FILE *f = fopen(p, "re");
    char st[512];
    if (!f) return 0;
    size_t got = fread(st, 1, sizeof st - 1, f);
    fclose(f);
    st[got] = 0;
    char *rp = strrchr(st, ')');
    int ppid;
    if (!rp || sscanf(rp + 2, "%*c %d", &ppid) != 1) return 0;
    pid = ppid;
  }
  return 0;
}

/* Signals every process of a container (found by its root). */
static void signal_ctr(uint16_t ch, int sig) {
  DIR *d = opendir("/proc");
  struct dirent *e;
  if (!d) return;
  while ((e = readdir(d))) {
    pid_t pid = atoi(e->d_name);
    if (pid > 1 && ctr_of_pid(pid) == ch) kill(pid, sig);
  }
  closedir(d);
}

static void pids_reply(uint16_t ch) {
  uint32_t pids[1024];
  size_t n = 0;
  DIR *d = opendir("/proc");
  struct dirent *e;
  while (d && (e = readdir(d)) && n < 1024) {
    pid_t pid = atoi(e->d_name);
    char p[64], root[256];
    snprintf(p, sizeof p, "/proc/%d/root", pid);
    /* zombies have no root: not listed */
    if (pid > 1 && readlink(p, root, sizeof root - 1) > 0 && ctr_of_pid(pid) == ch) pids[n++] = pid;
  }
  if (d) closedir(d);
  send_frame(P_CTL, T_PIDLIST, ch, pids, n * 4);
}

/* OOM kills since the last look: marks the containers of the killed processes. */
static void read_kmsg(void) {
  char rec[2048];
  ssize_t n;
  while (kmsg >= 0 && (n = read(kmsg, rec, sizeof rec - 1)) != 0) {
    if (n < 0) {
      if (errno == EPIPE) continue; /* overwritten records: read on */
      break;                        /* EAGAIN: nothing more */
    }
    rec[n] = 0;
    char *k = strstr(rec, "Killed process ");
    int pid;
    if (!k || sscanf(k, "Killed process %d", &pid) != 1) continue;
    for (int i = 0; i < MAXP; i++)
      if (P[i].used && P[i].pid == pid) P[i].oom = 1;
    uint16_t ch = ctr_of_pid(pid);
    for (int i = 0; i < MAXP && !ch; i++)
      if (P[i].used && P[i].pid == pid) ch = P[i].ctr;
    struct ctr *c = ch ? ctr_of(ch) : NULL;
    if (c && !c->exited && !c->oom) {
      c->oom = 1;
      send_frame(P_CTL, T_OOM, ch, NULL, 0);
    }
  }
}

struct runreq {
  char root[512];
  struct { char src[512], dest[512]; int ro; } binds[32];
  int nbinds;
  uint16_t ctr;
  uint16_t pidns; /* RUN: join this container's pid namespace instead of a new one */
};

/* The pod records of a payload (spec_parse skips them; it has checked the lengths already). */
static const char *pod_records(const uint8_t *buf, size_t len, struct runreq *r) {
  memset(r, 0, sizeof *r);
  for (size_t off = 0; off + 6 <= len;) {
    uint16_t tag;
    uint32_t n;
    memcpy(&tag, buf + off, 2);
    memcpy(&n, buf + off + 2, 4);
    const char *p = (const char *)buf + off + 6;
    off += 6 + n;
    if (tag == R_ROOT) {
      if (n == 0 || n >= sizeof r->root || memchr(p, 0, n)) return "bad root record";
      memcpy(r->root, p, n);
      if (!share_path_ok(r->root)) return "root must be a path inside the share";
    } else if (tag == R_BIND) {
      if (r->nbinds == 32) return "at most 32 bind mounts";
      const char *src = p, *dest = memchr(p, 0, n);
      const char *mode = dest ? memchr(dest + 1, 0, n - (dest + 1 - p)) : NULL;
      if (!dest || !mode || (size_t)(dest - src) >= 512 || (size_t)(mode - dest - 1) >= 512 || dest[1] != '/') return "bad bind record";
      memcpy(r->binds[r->nbinds].src, src, dest - src);
      memcpy(r->binds[r->nbinds].dest, dest + 1, mode - dest - 1);
      r->binds[r->nbinds].ro = (size_t)(p + n - mode - 1) == 2 && memcmp(mode + 1, "ro", 2) == 0;
      if (!share_path_ok(r->binds[r->nbinds].src) || strstr(r->binds[r->nbinds].dest, "..")) return "bad bind path";
      r->nbinds++;
    } else if (tag == R_CONTAINER || tag == R_PIDNS) {
      if (n != 2) return "bad container record";
      memcpy(tag == R_CONTAINER ? &r->ctr : &r->pidns, p, 2);
    }
  }
  return NULL;
}

static int fail(char *msg, size_t ml, const char *what, const char *path) {
  snprintf(msg, ml, "%s %s: %s", what, path, strerror(errno));
  return -1;
}

/* /run/c/<ch>: the container's root with its mounts. */
static int mount_root(uint16_t ch, const struct spec *x, const struct runreq *r, char *msg, size_t ml) {
  char dst[64], src[1024], p[1100];
  root_dir(ch, dst, sizeof dst);
  snprintf(src, sizeof src, SHARE "/%s", r->root);
  mkdir_p(dst);
  if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL)) return fail(msg, ml, "bind the container root", r->root);
  snprintf(p, sizeof p, "%s/proc", dst); /* mounted by the container's pid 1, from inside its namespace */
  mkdir_p(p);
  snprintf(p, sizeof p, "%s/sys", dst);
  mkdir_p(p);
  if (mount("sysfs", p, "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL)) return fail(msg, ml, "mount", "/sys");
  if (make_dev(dst, msg, ml)) return -1;
  snprintf(p, sizeof p, "%s/dev/shm", dst); /* the pod's one /dev/shm, as its containers share IPC */
  if (mount(PODSHM, p, NULL, MS_BIND, NULL)) return fail(msg, ml, "bind", "/dev/shm");
  for (int i = 0; i < r->nbinds; i++) {
    struct stat st;
    snprintf(src, sizeof src, SHARE "/%s", r->binds[i].src);
    snprintf(p, sizeof p, "%s%s", dst, r->binds[i].dest);
    if (stat(src, &st)) return fail(msg, ml, "bind mount source of", r->binds[i].dest);
    if (S_ISDIR(st.st_mode)) mkdir_p(p);
    else {
      char *slash = strrchr(p, '/');
      *slash = 0;
      mkdir_p(p);
      *slash = '/';
      int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
      if (fd >= 0) close(fd);
    }
    if (mount(src, p, NULL, MS_BIND | MS_REC, NULL)) return fail(msg, ml, "bind mount", r->binds[i].dest);
    if (r->binds[i].ro && mount(NULL, p, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)) return fail(msg, ml, "remount read-only", r->binds[i].dest);
  }
  for (int i = 0; i < x->ntmpfs; i++) {
    snprintf(p, sizeof p, "%s%s", dst, x->tmpfs[i].a);
    mkdir_p(p);
    if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, *x->tmpfs[i].b ? x->tmpfs[i].b : NULL)) return fail(msg, ml, "mount tmpfs", x->tmpfs[i].a);
  }
  if (x->readonly && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL)) return fail(msg, ml, "remount read-only", "/");
  return 0;
}

/* Unmounts a container's root and everything under it; its inodes are dropped from the cache
 * so virtiofsd lets go of the files and the host can unmount the overlay. */
static void unmount_root(uint16_t ch) {
  char dst[64];
  root_dir(ch, dst, sizeof dst);
  umount2(dst, MNT_DETACH);
  rmdir(dst);
  sync();
  int fd = open("/proc/sys/vm/drop_caches", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) { (void)!write(fd, "2", 1); close(fd); }
}

/* A pty of the container's own devpts instance (so `tty` inside names a node it can see). */
static int container_pty(const char *root, const struct winsize *ws, int *master, int *slave) {
  char p[128];
  int unlock = 0, n = -1;
  snprintf(p, sizeof p, "%s/dev/pts/ptmx", root);
  if ((*master = open(p, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) return -1;
  snprintf(p, sizeof p, "%s/dev/pts/", root);
  if (ioctl(*master, TIOCSPTLCK, &unlock) || ioctl(*master, TIOCGPTN, &n)) goto fail;
  snprintf(p + strlen(p), sizeof p - strlen(p), "%d", n);
  if ((*slave = open(p, O_RDWR | O_NOCTTY | O_CLOEXEC)) < 0) goto fail;
  ioctl(*slave, TIOCSWINSZ, ws);
  return 0;
fail:
  close(*master);
  *master = -1;
  return -1;
}

/* RUN (a container's first process) or EXEC (another process in a running container). */
static void start_proc(int is_run, uint16_t ch, const uint8_t *data, uint32_t len) {
  struct spec x;
  struct runreq r;
  const char *err;
  char msg[512], root[64];
  int slot = -1, code = 0, in[2] = {-1, -1}, out[2] = {-1, -1}, er[2] = {-1, -1}, master = -1, slave = -1;
  struct ctr *c = NULL;
  if (ch == 0 || proc_of(ch) || ctr_of(ch)) return error_frame(ch, "channel 0 or already in use");
  for (int i = 0; i < MAXP && slot < 0; i++) if (!P[i].used) slot = i;
  if (slot < 0) return error_frame(ch, "too many processes");
  if (spec_parse(data, len, &x, &err)) return error_frame(ch, err);
  if ((err = pod_records(data, len, &r))) { spec_free(&x); return error_frame(ch, err); }
  if (is_run) {
    if (!r.root[0]) { spec_free(&x); return error_frame(ch, "RUN needs a root record"); }
    for (int i = 0; i < MAXC && !c; i++) if (!C[i].used) c = &C[i];
    if (!c) { spec_free(&x); return error_frame(ch, "too many containers"); }
    *c = (struct ctr){.used = 1, .ch = ch};
    r.ctr = ch;
    if (mount_root(ch, &x, &r, msg, sizeof msg)) {
      unmount_root(ch);
      memset(c, 0, sizeof *c);
      spec_free(&x);
      return exit_frame(ch, 125, 0, msg);
    }
  } else {
    struct ctr *k = ctr_of(r.ctr);
    if (!k || k->exited) { spec_free(&x); return error_frame(ch, "exec: no such running container"); }
  }
  root_dir(r.ctr, root, sizeof root);
  struct spawnreq q = {.argv = x.argv, .env = x.env, .cwd = x.cwd, .user = x.user, .hostname = pod->hostname, .tty = x.tty, .root = root};
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (x.tty) {
    struct winsize ws = {.ws_row = x.rows ? x.rows : 24, .ws_col = x.cols ? x.cols : 80};
    if (container_pty(root, &ws, &master, &slave)) goto nofd;
    q.stdio[0] = q.stdio[1] = q.stdio[2] = slave;
  } else {
    if ((x.stdin_open && pipe2(in, O_CLOEXEC)) || pipe2(out, O_CLOEXEC) || pipe2(er, O_CLOEXEC)) goto nofd;
    q.stdio[0] = x.stdin_open ? in[0] : devnull;
    q.stdio[1] = out[1];
    q.stdio[2] = er[1];
  }
  /* the pid namespace the child is born in: a new one for a container, the container's for an exec */
  char procdir[80];
  int joined = 0;
  if (is_run && !r.pidns && own_pidns >= 0 && unshare(CLONE_NEWPID) == 0) {
    snprintf(procdir, sizeof procdir, "%s/proc", root);
    q.mount_proc = procdir;
    joined = 1;
  } else if ((!is_run || r.pidns) && own_pidns >= 0) {
    struct proc *m = proc_of(is_run ? r.pidns : r.ctr);
    char nsp[64];
    snprintf(nsp, sizeof nsp, "/proc/%d/ns/pid", m ? m->pid : -1);
    int nfd = m ? open(nsp, O_RDONLY | O_CLOEXEC) : -1;
    if (nfd >= 0 && setns(nfd, CLONE_NEWPID) == 0) joined = 1;
    if (nfd >= 0) close(nfd);
    if (is_run && joined) { /* the shared namespace's /proc, mounted from inside it */
      snprintf(procdir, sizeof procdir, "%s/proc", root);
      q.mount_proc = procdir;
    }
  } else if (is_run) { /* a kernel without pid namespaces: the container shares the agent's */
    snprintf(procdir, sizeof procdir, "%s/proc", root);
    mount("proc", procdir, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL);
  }
  pid_t pid = spawn_process(&q, &code, msg, sizeof msg);
  if (joined) setns(own_pidns, CLONE_NEWPID);
  close_fd(&slave); close_fd(&in[0]); close_fd(&out[1]); close_fd(&er[1]); close_fd(&devnull);
  int tty = x.tty, stdin_open = x.stdin_open;
  spec_free(&x);
  if (pid < 0) {
    close_fd(&master); close_fd(&in[1]); close_fd(&out[0]); close_fd(&er[0]);
    if (is_run) { unmount_root(ch); memset(c, 0, sizeof *c); }
    return exit_frame(ch, code, 0, msg);
  }
  struct proc *s = &P[slot];
  *s = (struct proc){.used = 1, .ch = ch, .ctr = r.ctr, .pid = pid, .tty = tty,
                     .out = tty ? master : out[0], .err = tty ? -1 : er[0], .in = tty ? (stdin_open ? dup(master) : -1) : in[1]};
  if (s->in >= 0) fcntl(s->in, F_SETFL, O_NONBLOCK | fcntl(s->in, F_GETFL));
  uint32_t p32 = pid;
  send_frame(P_CTL, T_STARTED, ch, &p32, 4);
  return;
nofd:
  close_fd(&master); close_fd(&slave); close_fd(&in[0]); close_fd(&in[1]); close_fd(&out[0]); close_fd(&out[1]); close_fd(&er[0]); close_fd(&er[1]); close_fd(&devnull);
  spec_free(&x);
  if (is_run) { unmount_root(ch); memset(c, 0, sizeof *c); }
  exit_frame(ch, 125, 0, "out of file descriptors or ptys");
}

static void on_frame(int port, const struct frame *f) {
  (void)port;
  struct proc *s = proc_of(f->channel);
  struct ctr *c;
  uint32_t u;
  switch (f->type) {
  case T_RUN: start_proc(1, f->channel, f->data, f->len); break;
  case T_EXEC: start_proc(0, f->channel, f->data, f->len); break;
  case T_STDIN:
    if (s && s->in >= 0 && !s->in_eof) {
      uint8_t *b = realloc(s->inbuf, s->inlen + f->len);
      if (b) { memcpy(b + s->inlen, f->data, f->len); s->inbuf = b; s->inlen += f->len; }
    }
    break;
  case T_STDIN_EOF:
    if (s) { s->in_eof = 1; if (!s->inlen && !s->tty) close_fd(&s->in); }
    break;
  case T_SIGNAL: /* u32 signal [, u8 flags: 1 = every process of the channel's container] */
    if (f->len < 4) break;
    memcpy(&u, f->data, 4);
    if (u == 0 || u >= NSIG) break;
    if (f->len >= 5 && (f->data[4] & 1)) signal_ctr(s ? s->ctr : f->channel, u);
    else if (s && !s->reaped) kill(s->pid, u);
    break;
  case T_RESIZE:
    if (s && s->tty && f->len == 4 && s->out >= 0) {
      struct winsize ws = {0};
      memcpy(&ws.ws_row, f->data, 2);
      memcpy(&ws.ws_col, f->data + 2, 2);
      ioctl(s->out, TIOCSWINSZ, &ws);
    }
    break;
  case T_PIDS: pids_reply(f->channel); break;
  case T_REMOVE:
    c = ctr_of(f->channel);
    if (!c) { send_frame(P_CTL, T_REMOVED, f->channel, NULL, 0); break; } /* already gone: done */
    if (!c->exited) { error_frame(f->channel, "remove: the container is still running"); break; }
    unmount_root(c->ch);
    memset(c, 0, sizeof *c);
    send_frame(P_CTL, T_REMOVED, f->channel, NULL, 0);
    break;
  case T_SHUTDOWN: power_off(); break;
  default: error_frame(f->channel, "unknown frame type"); break;
  }
}

static void forward(struct proc *s, int *fd, uint8_t type) {
  static uint8_t buf[FRAME_MAX_PAYLOAD];
  ssize_t n = read(*fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return;
  if (n <= 0) { /* EOF, or EIO from a pty master whose slave side is gone */
    if (s->in == *fd) s->in = -1;
    close_fd(fd);
    return;
  }
  send_frame(P_CTL, type, s->ch, buf, n);
}

static void flush_stdin(struct proc *s) {
  ssize_t n = write(s->in, s->inbuf, s->inlen);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  if (n < 0) { s->inlen = 0; close_fd(&s->in); return; }
  memmove(s->inbuf, s->inbuf + n, s->inlen - n);
  s->inlen -= n;
  if (!s->inlen && s->in_eof && !s->tty) close_fd(&s->in);
}

static void reap(void) {
  int st;
  pid_t pid;
  while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
    for (int i = 0; i < MAXP; i++)
      if (P[i].used && P[i].pid == pid && !P[i].reaped) {
        P[i].reaped = 1;
        P[i].status = st;
        /* a container's first process ended: the container ends (no process outlives it) */
        if (P[i].ch == P[i].ctr) signal_ctr(P[i].ctr, SIGKILL);
      }
}

/* Processes whose output is drained and that were reaped: EXIT to the host. */
static void retire(void) {
  for (int i = 0; i < MAXP; i++) {
    struct proc *s = &P[i];
    if (!s->used || !s->reaped || s->out >= 0 || s->err >= 0) continue;
    int st = s->status;
    int code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    struct ctr *c = s->ch == s->ctr ? ctr_of(s->ch) : NULL;
    int oom = s->oom || (c && c->oom);
    if (c) c->exited = 1;
    exit_frame(s->ch, code, oom, NULL);
    if (s->in >= 0 && s->in != s->out) close(s->in);
    free(s->inbuf);
    memset(s, 0, sizeof *s);
  }
}

/* The pod's loopback, up: a pod's containers talk to each other over localhost. */
static void loopback_up(void) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct ifreq ifr = {0};
  if (fd < 0) return;
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "lo");
  if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
    ifr.ifr_flags |= IFF_UP;
    ioctl(fd, SIOCSIFFLAGS, &ifr);
  }
  close(fd);
}

void pod_main(const struct spec *s, int sfd) {
  char msg[512];
  pod = s;
  mkdir_p(SHARE);
  mkdir_p(PODSHM);
  if (mount(POD_SHARE_TAG, SHARE, "virtiofs", MS_NOSUID | MS_NODEV, NULL)) {
    fail(msg, sizeof msg, "mount the virtio-fs share", POD_SHARE_TAG);
    error_frame(0, msg);
    power_off();
  }
  if (mount("shm", PODSHM, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")) {
    fail(msg, sizeof msg, "mount", PODSHM);
    error_frame(0, msg);
    power_off();
  }
  loopback_up();
  /* the pod's NICs, as the shim prepared them (guest/net.c; NETIF/ROUTE records of the spec) */
  if (net_up(&s->net, msg, sizeof msg)) {
    error_frame(0, msg);
    power_off();
  }
  /* overcommit like a container host: a process may map more than the VM has and the OOM killer
   * ends it when it touches too much (reported as OOMKilled), instead of malloc failing early */
  int oc = open("/proc/sys/vm/overcommit_memory", O_WRONLY | O_CLOEXEC);
  if (oc >= 0) { (void)!write(oc, "1", 1); close(oc); }
  own_pidns = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
  kmsg = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (kmsg >= 0) lseek(kmsg, 0, SEEK_END);
  struct utsname u;
  uint8_t rb[4 + sizeof u.release] = {0};
  uname(&u);
  memcpy(rb + 4, u.release, strlen(u.release));
  send_frame(P_CTL, T_READY, 0, rb, 4 + strlen(u.release));
  for (;;) {
    struct pollfd pf[3 + 3 * MAXP];
    struct { struct proc *s; int *fd; uint8_t type; int kind; } what[3 + 3 * MAXP];
    int n = 0;
    size_t queued = 0;
    for (int i = 0; i < MAXP; i++) queued += P[i].inlen;
    pf[n] = (struct pollfd){.fd = sfd, .events = POLLIN};
    what[n++].kind = 0;
    if (kmsg >= 0) { pf[n] = (struct pollfd){.fd = kmsg, .events = POLLIN}; what[n++].kind = 1; }
    if (ports[P_CTL].connected && queued <= STDIN_HIGH) { pf[n] = (struct pollfd){.fd = ports[P_CTL].fd, .events = POLLIN}; what[n++].kind = 2; }
    for (int i = 0; i < MAXP; i++) {
      struct proc *p = &P[i];
      if (!p->used) continue;
      if (p->out >= 0) { pf[n] = (struct pollfd){.fd = p->out, .events = POLLIN}; what[n++] = (typeof(what[0])){p, &p->out, T_STDOUT, 3}; }
      if (p->err >= 0) { pf[n] = (struct pollfd){.fd = p->err, .events = POLLIN}; what[n++] = (typeof(what[0])){p, &p->err, T_STDERR, 3}; }
      if (p->in >= 0 && p->inlen) { pf[n] = (struct pollfd){.fd = p->in, .events = POLLOUT}; what[n++] = (typeof(what[0])){p, &p->in, 0, 4}; }
    }
    if (poll(pf, n, -1) < 0) continue;
    for (int i = 0; i < n; i++) {
      if (!pf[i].revents) continue;
      switch (what[i].kind) {
      case 0: {
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si) {
          /* SIGIO: the host came back (it never should: the shim holds hull.ctl for the VM's life) */
          if (si.ssi_signo == SIGIO && ports[P_CTL].fd >= 0) ports[P_CTL].connected = 1;
        }
        break;
      }
      case 1: read_kmsg(); break;
      case 2:
        if ((pf[i].revents & POLLIN) ? port_read(P_CTL, on_frame) < 0 : (pf[i].revents & (POLLHUP | POLLERR)) != 0)
          power_off(); /* the shim is gone: nobody can reach this pod again */
        break;
      case 3: forward(what[i].s, what[i].fd, what[i].type); break;
      default: if (what[i].s->in >= 0) flush_stdin(what[i].s); break;
      }
    }
    read_kmsg(); /* before a SIGKILLed process is retired, so its OOM flag is known */
    reap();
    retire();
  }
}
