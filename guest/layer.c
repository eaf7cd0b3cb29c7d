/*
 * The writable layer as a tar stream on hull.layer (R_LAYER, guest/PROTOCOL.md), written after
 * every process of the container has exited. The overlay's upper dir (tmpfs) is walked through
 * a directory fd the agent opened before it moved into the container root; the stream is in OCI
 * layer form: an overlay whiteout (char device 0/0) becomes an empty `.wh.NAME`, an opaque
 * directory (trusted.overlay.opaque=y) gets an empty `DIR/.wh..wh..opq`, a file with several
 * links is written once and linked after, extended attributes other than trusted.overlay.* go
 * into pax records (as are names and link targets longer than ustar holds). The host trusts none
 * of it: it unpacks the stream with its hardened unpacker and writes the real layer itself.
 */
#define _GNU_SOURCE
#include "layer.h"
#include "ports.h"
#include <dirent.h>
#include <signal.h>
#include <time.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define BLK 512
#define PATHMAX 4096
#define XMAX 65536

static int out_fd = -1;      /* the hull.layer port (layer_send), or -1: frames on a control port */
static int out_port, live;   /* layer_serve: the port, and whether processes may still write */
static uint16_t out_ch;
static uint8_t fbuf[FRAME_MAX_PAYLOAD];
static size_t flen;
char layer_error[512];

/* Records the first failure (what, path, errno) and returns -1. */
static int failed(const char *what, const char *path) {
  if (!layer_error[0]) snprintf(layer_error, sizeof layer_error, "%s %s: %s", what, path, strerror(errno));
  return -1;
}
static char zeros[BLK];

static int flush_frames(void) {
  if (!flen) return 0;
  int rc = send_frame(out_port, T_STDOUT, out_ch, fbuf, flen);
  flen = 0;
  return rc ? failed("write to", "hull.ctl") : 0;
}

/* The archive's bytes: straight to hull.layer, or in STDOUT frames of at most 64 KiB. */
static int put(const void *b, size_t n) {
  if (out_fd >= 0) return write_all(out_fd, b, n) ? failed("write to", "hull.layer") : 0;
  for (const uint8_t *p = b; n;) {
    size_t k = n < sizeof fbuf - flen ? n : sizeof fbuf - flen;
    memcpy(fbuf + flen, p, k);
    flen += k, p += k, n -= k;
    if (flen == sizeof fbuf && flush_frames()) return -1;
  }
  return 0;
}
static int pad(size_t n) { return n % BLK ? put(zeros, BLK - n % BLK) : 0; }

/* w-1 octal digits and a NUL (the value is known to fit: larger ones travel in pax records). */
static void octal(char *f, size_t w, unsigned long long v) {
  f[w - 1] = 0;
  for (size_t i = w - 1; i-- > 0; v >>= 3) f[i] = '0' + (v & 7);
}

/* Appends one pax record "LEN key=value\n" (LEN counts itself) to *buf. */
static int pax_add(char **buf, size_t *len, const char *key, const void *val, size_t vlen) {
  size_t body = 1 + strlen(key) + 1 + vlen + 1, total = body + 1;
  while (total != body + (size_t)snprintf(NULL, 0, "%zu", total)) total = body + snprintf(NULL, 0, "%zu", total);
  char *b = realloc(*buf, *len + total);
  if (!b) return -1;
  int d = snprintf(b + *len, total + 1, "%zu %s=", total, key);
  memcpy(b + *len + d, val, vlen);
  b[*len + total - 1] = '\n';
  *buf = b;
  *len += total;
  return 0;
}

/* A ustar header block; name and link must fit (the caller puts longer ones in pax records). */
static int ustar(const char *name, const char *link, char type, const struct stat *st, unsigned long long size) {
  char h[BLK];
  memset(h, 0, sizeof h);
  memcpy(h, name, strnlen(name, 100));
  octal(h + 100, 8, st->st_mode & 07777);
  octal(h + 108, 8, st->st_uid & 07777777);
  octal(h + 116, 8, st->st_gid & 07777777);
  octal(h + 124, 12, size > 077777777777ull ? 0 : size);
  octal(h + 136, 12, st->st_mtim.tv_sec > 0 ? (unsigned long long)st->st_mtim.tv_sec : 0);
  h[156] = type;
  if (link) memcpy(h + 157, link, strnlen(link, 100));
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  memset(h + 148, ' ', 8);
  unsigned sum = 0;
  for (int i = 0; i < BLK; i++) sum += (unsigned char)h[i];
  octal(h + 148, 7, sum);
  return put(h, BLK);
}

/* Pax records (long names, big ids, xattrs of `fd` when >= 0), then the ustar header. */
static int entry(const char *name, const char *link, char type, const struct stat *st, unsigned long long size, int fd) {
  char *pax = NULL;
  size_t plen = 0;
  int rc = -1;
  char num[32];
  if (strlen(name) >= 100 && pax_add(&pax, &plen, "path", name, strlen(name))) goto out;
  if (link && strlen(link) >= 100 && pax_add(&pax, &plen, "linkpath", link, strlen(link))) goto out;
  if (size > 077777777777ull && pax_add(&pax, &plen, "size", num, snprintf(num, sizeof num, "%llu", size))) goto out;
  if (st->st_uid > 07777777 && pax_add(&pax, &plen, "uid", num, snprintf(num, sizeof num, "%u", st->st_uid))) goto out;
  if (st->st_gid > 07777777 && pax_add(&pax, &plen, "gid", num, snprintf(num, sizeof num, "%u", st->st_gid))) goto out;
  if (fd >= 0) {
    static char names[XMAX], val[XMAX];
    ssize_t n = flistxattr(fd, names, sizeof names);
    for (ssize_t i = 0; n > 0 && i < n; i += strlen(names + i) + 1) {
      const char *k = names + i;
      if (!strncmp(k, "trusted.overlay.", 16)) continue;
      ssize_t v = fgetxattr(fd, k, val, sizeof val);
      char key[300];
      if (v < 0 || snprintf(key, sizeof key, "SCHILY.xattr.%s", k) >= (int)sizeof key) continue;
      if (pax_add(&pax, &plen, key, val, v)) goto out;
    }
  }
  if (plen) {
    struct stat ps = {.st_mode = 0644, .st_mtim = st->st_mtim};
    if (ustar("PaxHeader", NULL, 'x', &ps, plen) || put(pax, plen) || pad(plen)) goto out;
  }
  rc = ustar(name, link, type, st, size);
out:
  free(pax);
  return rc;
}

struct seen { dev_t dev; ino_t ino; char *path; };
static struct seen *links;
static size_t nlinks;

static const char *seen_before(const struct stat *st, const char *path) {
  for (size_t i = 0; i < nlinks; i++)
    if (links[i].dev == st->st_dev && links[i].ino == st->st_ino) return links[i].path;
  struct seen *l = realloc(links, (nlinks + 1) * sizeof *l);
  if (!l) return NULL;
  links = l;
  links[nlinks++] = (struct seen){st->st_dev, st->st_ino, strdup(path)};
  return NULL;
}

/* live: a file recorded by seen_before and then skipped (gone, or replaced) is no link target. */
static void forget(const struct stat *st, const char *path) {
  struct seen *l = nlinks ? &links[nlinks - 1] : NULL;
  if (l && l->dev == st->st_dev && l->ino == st->st_ino && l->path && !strcmp(l->path, path)) free(links[--nlinks].path);
}

/* Each archive starts with no file seen (a request after another must not link to its paths). */
static void links_reset(void) {
  for (size_t i = 0; i < nlinks; i++) free(links[i].path);
  nlinks = 0;
}

static int walk(int dirfd, const char *rel);

static int one(int dirfd, const char *name, const char *rel) {
  char path[PATHMAX];
  struct stat st;
  if (snprintf(path, sizeof path, "%s%s", rel, name) >= (int)sizeof path) { errno = ENAMETOOLONG; return failed("path", rel); }
  if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW)) return live && errno == ENOENT ? 0 : failed("stat", path);
  if (S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0)) { /* whiteout */
    char wo[PATHMAX];
    if (snprintf(wo, sizeof wo, "%s.wh.%s", rel, name) >= (int)sizeof wo) { errno = ENAMETOOLONG; return failed("path", path); }
    st.st_mode = S_IFREG | 0600;
    return entry(wo, NULL, '0', &st, 0, -1);
  }
  if (S_ISDIR(st.st_mode)) {
    int fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) return live && (errno == ENOENT || errno == ENOTDIR) ? 0 : failed("open", path);
    char dpath[PATHMAX + 1], opq[2] = {0};
    snprintf(dpath, sizeof dpath, "%s/", path);
    int rc = entry(dpath, NULL, '5', &st, 0, fd);
    if (!rc && fgetxattr(fd, "trusted.overlay.opaque", opq, 1) == 1 && opq[0] == 'y') {
      char o[PATHMAX + 16];
      struct stat os = st;
      os.st_mode = S_IFREG | (st.st_mode & 0777);
      os.st_mtim.tv_sec = 0;
      snprintf(o, sizeof o, "%s.wh..wh..opq", dpath);
      rc = entry(o, NULL, '0', &os, 0, -1);
    }
    if (!rc) rc = walk(fd, dpath);
    close(fd);
    return rc;
  }
  if (S_ISSOCK(st.st_mode)) return 0; /* docker leaves sockets out too */
  if (st.st_nlink > 1) {
    const char *first = seen_before(&st, path);
    if (first) return entry(path, first, '1', &st, 0, -1);
  }
  if (S_ISLNK(st.st_mode)) {
    char target[PATHMAX];
    ssize_t n = readlinkat(dirfd, name, target, sizeof target - 1);
    if (n < 0 && live && (errno == ENOENT || errno == EINVAL)) { forget(&st, path); return 0; }
    if (n < 0) return failed("readlink", path);
    target[n] = 0;
    return entry(path, target, '2', &st, 0, -1);
  }
  if (S_ISFIFO(st.st_mode)) return entry(path, NULL, '6', &st, 0, -1);
  if (!S_ISREG(st.st_mode)) { /* device nodes: the host refuses them in a layer */
    return entry(path, NULL, S_ISCHR(st.st_mode) ? '3' : '4', &st, 0, -1);
  }
  int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0 && live && (errno == ENOENT || errno == ELOOP)) { forget(&st, path); return 0; }
  if (fd < 0) return failed("open", path);
  if (live) { /* the name may have been replaced since the stat (rename over it): take the opened file's */
    struct stat was = st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) { forget(&was, path); close(fd); return 0; }
    if (st.st_ino != was.st_ino) forget(&was, path);
  }
  int rc = entry(path, NULL, '0', &st, st.st_size, fd);
  static char buf[1 << 16];
  off_t left = st.st_size;
  while (!rc && left > 0) {
    ssize_t n = read(fd, buf, left < (off_t)sizeof buf ? (size_t)left : sizeof buf);
    if (n < 0 || (n == 0 && !live)) rc = failed("read", path); /* nothing runs: a short read is an error */
    else if (n == 0) { /* live (commit --pause=false): the file shrank meanwhile; its header holds */
      memset(buf, 0, sizeof buf);
      while (!rc && left > 0) { size_t k = left < (off_t)sizeof buf ? (size_t)left : sizeof buf; rc = put(buf, k); left -= k; }
    } else { rc = put(buf, n); left -= n; }
  }
  close(fd);
  return rc ? rc : pad(st.st_size);
}

static int walk(int dirfd, const char *rel) {
  int fd = dup(dirfd);
  DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
  struct dirent *e;
  int rc = 0;
  if (!d) { if (fd >= 0) close(fd); return failed("read directory", rel[0] ? rel : "/"); }
  rewinddir(d); /* the dup shares its offset with dirfd: the upper dir is walked once per request */
  while (!rc && (e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    rc = one(dirfd, e->d_name, rel);
  }
  closedir(d);
  return rc;
}

int layer_send(int dirfd, int out) {
  out_fd = out;
  live = 0;
  layer_error[0] = 0;
  links_reset();
  if (dirfd < 0 || out < 0) { errno = EBADF; return failed("open", out < 0 ? "hull.layer" : "the upper dir"); }
  if (walk(dirfd, "")) return -1;
  return put(zeros, BLK) || put(zeros, BLK) ? -1 : 0;
}

/* The state letter of a user process (/proc/PID/stat), or 0 for kernel threads and the gone. */
static char proc_state(int pid) {
  char p[64], st[512], *c;
  snprintf(p, sizeof p, "/proc/%d/stat", pid);
  int fd = open(p, O_RDONLY | O_CLOEXEC);
  ssize_t n = fd >= 0 ? read(fd, st, sizeof st - 1) : -1;
  if (fd >= 0) close(fd);
  if (n <= 0) return 0;
  st[n] = 0;
  if (!(c = strrchr(st, ')')) || c[1] != ' ' || !c[2]) return 0;
  int ppid = atoi(c + 4);
  return ppid == 0 || ppid == 2 ? 0 : c[2]; /* kernel threads (kthreadd's children) take no signals */
}

static pid_t *frozen; /* the processes freeze() stopped, which thaw() continues */
static size_t nfrozen, capfrozen;

static int was_frozen(pid_t pid) {
  for (size_t i = 0; i < nfrozen; i++) if (frozen[i] == pid) return 1;
  return 0;
}

/* Every process but this one stopped (SIGSTOP), one by one, until a look at /proc finds each
 * in state T (or a zombie), up to ~1 s; a process already stopped before (by its user) is left
 * as it is, and thaw() continues only what freeze() stopped. */
static void freeze(void) {
  nfrozen = 0;
  for (int tries = 0; tries < 100; tries++) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int running = 0;
    while (d && (e = readdir(d))) {
      int pid = atoi(e->d_name);
      if (pid <= 2 || pid == getpid()) continue; /* pid 2: kthreadd */
      char state = proc_state(pid);
      if (!state || state == 'T' || state == 't' || state == 'Z' || state == 'X') continue;
      running = 1;
      if (was_frozen(pid)) continue; /* signalled, not stopped yet */
      if (nfrozen == capfrozen) {
        pid_t *f = realloc(frozen, (capfrozen ? capfrozen * 2 : 64) * sizeof *f);
        if (!f) continue;
        frozen = f;
        capfrozen = capfrozen ? capfrozen * 2 : 64;
      }
      if (!kill(pid, SIGSTOP)) frozen[nfrozen++] = pid;
    }
    if (d) closedir(d);
    if (!running) return;
    struct timespec ms = {0, 10000000};
    nanosleep(&ms, NULL);
  }
}

static void thaw(void) {
  for (size_t i = 0; i < nfrozen; i++) kill(frozen[i], SIGCONT);
  nfrozen = 0;
}

int layer_serve(int dirfd, int port, uint16_t ch, int do_freeze) {
  uint8_t exitb[5 + sizeof layer_error] = {0};
  out_fd = -1, out_port = port, out_ch = ch, flen = 0, live = !do_freeze;
  layer_error[0] = 0;
  links_reset();
  if (do_freeze) freeze();
  int rc = dirfd < 0 ? (errno = EBADF, failed("open", "the upper dir")) : walk(dirfd, "");
  if (!rc) rc = put(zeros, BLK) || put(zeros, BLK) || flush_frames() ? -1 : 0;
  if (do_freeze) thaw();
  flen = 0;
  int32_t code = rc ? 1 : 0;
  size_t rl = rc ? strlen(layer_error) : 0;
  memcpy(exitb, &code, 4);
  exitb[4] = rc ? 0 : EXIT_LAYER;
  memcpy(exitb + 5, layer_error, rl);
  return send_frame(port, T_EXIT, ch, exitb, 5 + rl);
}
