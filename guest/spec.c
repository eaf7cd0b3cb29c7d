/* Decoding of spec records. Every length is checked against the buffer before use. */
#include "spec.h"
#include "proto.h"
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char *dupn(const uint8_t *p, uint32_t n) {
  char *s = malloc(n + 1);
  if (!s) return NULL;
  memcpy(s, p, n);
  s[n] = 0;
  return s;
}

static int push(char ***arr, int *n, char *v) {
  char **a = realloc(*arr, sizeof(char *) * (*n + 2));
  if (!a) return -1;
  a[(*n)++] = v;
  a[*n] = NULL;
  *arr = a;
  return 0;
}

/* "x\0y[\0z]" -> a, b, (ro) */
static int split_mount(const uint8_t *p, uint32_t n, struct mountreq *m, int with_mode) {
  char *s = dupn(p, n);
  if (!s) return -1;
  size_t l1 = strlen(s);
  if (l1 >= n) { free(s); return -1; }
  m->a = s;
  m->b = s + l1 + 1;
  m->ro = 0;
  if (with_mode) {
    size_t l2 = strlen(m->b);
    if (l1 + 1 + l2 >= n) { free(s); return -1; }
    m->ro = strcmp(m->b + l2 + 1, "ro") == 0;
  }
  return 0;
}

int spec_parse(const uint8_t *buf, size_t len, struct spec *s, const char **err) {
  size_t off = 0;
  int count = 0;
  memset(s, 0, sizeof *s);
  while (off < len) {
    if (len - off < 6 || ++count > SPEC_MAX_RECORDS) { *err = "truncated or oversized spec"; return -1; }
    uint16_t tag;
    uint32_t n;
    memcpy(&tag, buf + off, 2);
    memcpy(&n, buf + off + 2, 4);
    off += 6;
    if (n > len - off) { *err = "spec record longer than the spec"; return -1; }
    const uint8_t *p = buf + off;
    off += n;
    char *v = NULL;
    switch (tag) {
    case R_ARG:
    case R_ENV:
      if (!(v = dupn(p, n)) || push(tag == R_ARG ? &s->argv : &s->env, tag == R_ARG ? &s->argc : &s->envc, v)) goto oom;
      break;
    case R_CWD: free(s->cwd); if (!(s->cwd = dupn(p, n))) goto oom; break;
    case R_USER: free(s->user); if (!(s->user = dupn(p, n))) goto oom; break;
    case R_HOSTNAME: free(s->hostname); if (!(s->hostname = dupn(p, n))) goto oom; break;
    case R_TTY: s->tty = n > 0 && p[0]; break;
    case R_STDIN: s->stdin_open = n > 0 && p[0]; break;
    case R_READONLY: s->readonly = n > 0 && p[0]; break;
    case R_LOGFMT: s->logfmt = n > 0 && p[0]; break;
    case R_LAYER: s->layer = n > 0 && p[0] <= 2 ? p[0] : 0; break;
    case R_CLOCK:
      if (n != 8) { *err = "bad clock record"; return -1; }
      memcpy(&s->clock_ns, p, 8);
      break;
    case R_MAINPORT: s->mainport = n > 0 && p[0]; break;
    case R_POD: s->pod = n > 0 && p[0]; break;
    case R_TEMPLATE: s->template = n > 0 && p[0]; break;
    case R_RANDOM:
      if (n < 16 || n > sizeof s->random) { *err = "bad random record"; return -1; }
      memcpy(s->random, p, n);
      s->nrandom = n;
      break;
    case R_WINSIZE:
      if (n != 4) { *err = "bad window size record"; return -1; }
      memcpy(&s->rows, p, 2);
      memcpy(&s->cols, p + 2, 2);
      break;
    case R_TMPFS:
      if (s->ntmpfs == 32 || split_mount(p, n, &s->tmpfs[s->ntmpfs], 0)) { *err = "bad tmpfs record"; return -1; }
      s->ntmpfs++;
      break;
    case R_SHARE:
      if (s->nshares == 32 || split_mount(p, n, &s->shares[s->nshares], 1)) { *err = "bad share record"; return -1; }
      s->nshares++;
      break;
    default: /* unknown records are skipped: newer hosts may add optional ones */
      if (net_record(&s->net, tag, p, n, err) < 0) return -1;
      break;
    }
  }
  if (s->argc == 0 && !s->pod && !s->template) { *err = "spec has no command"; return -1; }
  return 0;
oom:
  *err = "out of memory";
  return -1;
}

int spec_load(const char *path, struct spec *s, const char **err) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) || st.st_size < 12 || st.st_size > (1 << 20)) {
    if (fd >= 0) close(fd);
    *err = "missing or oversized spec file";
    return -1;
  }
  uint8_t *buf = malloc(st.st_size);
  ssize_t got = buf ? read(fd, buf, st.st_size) : -1;
  close(fd);
  uint32_t ver = 0;
  if (got == st.st_size) memcpy(&ver, buf + 8, 4);
  if (got != st.st_size || memcmp(buf, SPEC_MAGIC, 8) || ver != PROTO_VERSION) {
    free(buf);
    *err = "spec file has a bad header or version";
    return -1;
  }
  int r = spec_parse(buf + 12, st.st_size - 12, s, err);
  free(buf);
  return r;
}

void spec_free(struct spec *s) {
  for (int i = 0; i < s->argc; i++) free(s->argv[i]);
  for (int i = 0; i < s->envc; i++) free(s->env[i]);
  free(s->argv);
  free(s->env);
  free(s->cwd);
  free(s->user);
  free(s->hostname);
  for (int i = 0; i < s->ntmpfs; i++) free(s->tmpfs[i].a);
  for (int i = 0; i < s->nshares; i++) free(s->shares[i].a);
  net_free(&s->net);
  memset(s, 0, sizeof *s);
}
