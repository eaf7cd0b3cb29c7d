/* The run spec: what to run and how, decoded from records (guest/PROTOCOL.md). */
#ifndef HULL_SPEC_H
#define HULL_SPEC_H
#include <stddef.h>
#include <stdint.h>
#include "net.h"

struct mountreq {
  char *a, *b; /* tmpfs: dest, options; share: tag, dest */
  int ro;
};

struct spec {
  char **argv; /* NULL-terminated */
  int argc;
  char **env;  /* NULL-terminated */
  int envc;
  char *cwd, *user, *hostname;
  int tty, stdin_open, readonly, mainport, logfmt, layer;
  int pod; /* R_POD: pod mode (guest/pod.c), no main process */
  int template; /* R_TEMPLATE: boot to be saved as a template (guest/snapshot.c) */
  uint8_t random[512]; /* R_RANDOM */
  size_t nrandom;
  uint64_t clock_ns;
  uint16_t rows, cols;
  struct mountreq tmpfs[32];
  int ntmpfs;
  struct mountreq shares[32];
  int nshares;
  struct netspec net; /* guest/net.c */
};

/* Decodes records from buf[0..len). Returns 0, or -1 with *err set to a static message. */
int spec_parse(const uint8_t *buf, size_t len, struct spec *s, const char **err);
/* Reads a spec file (magic + version + records). */
int spec_load(const char *path, struct spec *s, const char **err);
void spec_free(struct spec *s);
#endif
