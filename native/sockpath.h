/*
 * sockpath.h: the unix socket address of a path, for hull's helpers (hull-console binds one,
 * hull-attach connects to one). A path longer than sun_path is reached through /proc/self/fd of
 * its directory, which stays open (the descriptor is the caller's for the life of the program).
 * Returns 0, or -1 with errno set (ENAMETOOLONG when even that form does not fit).
 */
#ifndef HULL_SOCKPATH_H
#define HULL_SOCKPATH_H
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

static int sockaddr_for(struct sockaddr_un *a, const char *path) {
  memset(a, 0, sizeof *a);
  a->sun_family = AF_UNIX;
  if (strlen(path) < sizeof a->sun_path) {
    strcpy(a->sun_path, path);
    return 0;
  }
  char *d = strdup(path), *b = strdup(path);
  int dfd = d && b ? open(dirname(d), O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
  int n = dfd < 0 ? -1 : snprintf(a->sun_path, sizeof a->sun_path, "/proc/self/fd/%d/%s", dfd, basename(b));
  free(d);
  free(b);
  if (n < 0 || (size_t)n >= sizeof a->sun_path) {
    if (dfd >= 0) errno = ENAMETOOLONG;
    return -1;
  }
  return 0;
}
#endif
