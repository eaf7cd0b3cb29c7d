/* Resolving a docker-style user string against the image's own /etc/passwd and /etc/group. */
#ifndef HULL_USER_H
#define HULL_USER_H
#include <sys/types.h>

struct ident {
  uid_t uid;
  gid_t gid;
  gid_t groups[64];
  int ngroups;
  char home[256];
};

/* user: "", "name", "uid", "uid:gid", "name:group", "uid:group", "name:gid". Files are read from
 * the current root. Returns 0, or -1 with msg (size msglen) saying what was not found. */
int resolve_user(const char *user, struct ident *id, char *msg, size_t msglen);
/* The same, reading <root>/etc/passwd and <root>/etc/group (root "" = the current root). */
int resolve_user_at(const char *root, const char *user, struct ident *id, char *msg, size_t msglen);
#endif
