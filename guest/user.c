/* /etc/passwd and /etc/group parsing, no NSS: the image's files are the only source. */
#include "user.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *prefix = ""; /* root the files are read under (resolve_user_at) */

static FILE *open_etc(const char *name) {
  char p[4096];
  snprintf(p, sizeof p, "%s/etc/%s", prefix, name);
  return fopen(p, "re");
}

static int numeric(const char *s, unsigned long *out) {
  char *end;
  if (!*s) return 0;
  unsigned long v = strtoul(s, &end, 10);
  if (*end || v > 0xfffffffeUL) return 0;
  *out = v;
  return 1;
}

/* Splits a colon-separated line in place into at most n fields; returns the field count. */
static int fields(char *line, char **f, int n) {
  int i = 0;
  line[strcspn(line, "\n")] = 0;
  while (i < n) {
    f[i++] = line;
    char *c = strchr(line, ':');
    if (!c) break;
    *c = 0;
    line = c + 1;
  }
  return i;
}

/* Finds the passwd entry by name (or by uid when name is NULL). */
static int passwd_find(const char *name, unsigned long uid, struct ident *id, char *uname, size_t ulen) {
  FILE *f = open_etc("passwd");
  char line[1024], *p[7];
  int found = 0;
  if (!f) return 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long u, g;
    if (fields(line, p, 7) < 7 || !numeric(p[2], &u) || !numeric(p[3], &g)) continue;
    if (name ? strcmp(p[0], name) == 0 : u == uid) {
      id->uid = u;
      id->gid = g;
      snprintf(id->home, sizeof id->home, "%s", *p[5] ? p[5] : "/");
      snprintf(uname, ulen, "%s", p[0]);
      found = 1;
    }
  }
  fclose(f);
  return found;
}

static int group_find(const char *name, unsigned long *gid) {
  FILE *f = open_etc("group");
  char line[4096], *p[4];
  int found = 0;
  if (!f) return 0;
  while (!found && fgets(line, sizeof line, f)) {
    unsigned long g;
    if (fields(line, p, 4) < 3 || !numeric(p[2], &g)) continue;
    if (strcmp(p[0], name) == 0) { *gid = g; found = 1; }
  }
  fclose(f);
  return found;
}

/* Supplementary groups: every group listing uname as a member, plus the primary gid. */
static void member_groups(const char *uname, struct ident *id) {
  FILE *f = open_etc("group");
  char line[4096], *p[4];
  id->groups[0] = id->gid;
  id->ngroups = 1;
  if (!f || !*uname) { if (f) fclose(f); return; }
  while (id->ngroups < 64 && fgets(line, sizeof line, f)) {
    unsigned long g;
    if (fields(line, p, 4) < 4 || !numeric(p[2], &g) || g == id->gid) continue;
    for (char *m = strtok(p[3], ","); m; m = strtok(NULL, ","))
      if (strcmp(m, uname) == 0) { id->groups[id->ngroups++] = g; break; }
  }
  fclose(f);
}

int resolve_user_at(const char *root, const char *user, struct ident *id, char *msg, size_t msglen) {
  prefix = root;
  int r = resolve_user(user, id, msg, msglen);
  prefix = "";
  return r;
}

int resolve_user(const char *user, struct ident *id, char *msg, size_t msglen) {
  char u[256], uname[256] = "", *g = NULL;
  unsigned long num;
  snprintf(u, sizeof u, "%s", user && *user ? user : "0");
  if ((g = strchr(u, ':'))) *g++ = 0;
  id->uid = 0;
  id->gid = 0;
  snprintf(id->home, sizeof id->home, "/");
  if (numeric(u, &num)) {
    if (!passwd_find(NULL, num, id, uname, sizeof uname)) id->uid = num; /* unknown uid: gid 0, home / */
  } else if (!passwd_find(u, 0, id, uname, sizeof uname)) {
    snprintf(msg, msglen, "unable to find user %s: no matching entries in passwd file", u);
    return -1;
  }
  if (g) {
    if (numeric(g, &num)) id->gid = num;
    else if (group_find(g, &num)) id->gid = num;
    else {
      snprintf(msg, msglen, "unable to find group %s: no matching entries in group file", g);
      return -1;
    }
    id->groups[0] = id->gid;
    id->ngroups = 1;
  } else {
    member_groups(uname, id);
  }
  return 0;
}
