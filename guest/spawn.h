/* Starting one workload process (the main one or an exec'd one) inside the image root. */
#ifndef HULL_SPAWN_H
#define HULL_SPAWN_H
#include <sys/types.h>

struct spawnreq {
  char **argv;
  char **env;         /* as given; defaults (PATH, HOME, HOSTNAME, TERM) are added when absent */
  const char *cwd;    /* created when missing, like docker */
  const char *user;
  const char *hostname;
  const char *root;   /* pod mode: the container's root, chrooted into in the child (NULL: /) */
  const char *mount_proc; /* pod mode: where the child (pid 1 of a new pid namespace) mounts its /proc */
  int tty;            /* stdio[0..2] are all the pty slave: make it the controlling terminal */
  int stdio[3];       /* fds for 0, 1, 2 in the child */
};

/* Returns the child's pid, or -1 with *code (126/127/125) and msg saying why it could not start. */
pid_t spawn_process(const struct spawnreq *r, int *code, char *msg, size_t msglen);
#endif
