/* fork + exec with docker's conventions: 127 = command not found, 126 = found but not runnable. */
#include "spawn.h"
#include "user.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;
/* strerror in Go's style, as docker prints it: "permission denied" */
static const char *errstr(int e) {
  static char b[128];
  snprintf(b, sizeof b, "%s", strerror(e));
  if (b[0] >= 'A' && b[0] <= 'Z' && !(b[1] >= 'A' && b[1] <= 'Z')) b[0] += 'a' - 'A';
  return b;
}

#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static int has_key(char **env, const char *key) {
  size_t n = strlen(key);
  for (; env && *env; env++)
    if (strncmp(*env, key, n) == 0 && (*env)[n] == '=') return 1;
  return 0;
}

/* The spec's env plus the defaults docker adds when the image and -e leave them out. */
static char **full_env(const struct spawnreq *r, const struct ident *id) {
  int n = 0;
  while (r->env && r->env[n]) n++;
  char **e = calloc(n + 5, sizeof(char *));
  static char home[300], host[300];
  if (!e) return NULL;
  memcpy(e, r->env, n * sizeof(char *));
  if (!has_key(e, "PATH")) e[n++] = "PATH=" DEFAULT_PATH;
  if (!has_key(e, "HOSTNAME") && r->hostname) { snprintf(host, sizeof host, "HOSTNAME=%s", r->hostname); e[n++] = host; }
  if (!has_key(e, "HOME")) { snprintf(home, sizeof home, "HOME=%s", id->home); e[n++] = home; }
  if (r->tty && !has_key(e, "TERM")) e[n++] = "TERM=xterm";
  return e;
}

static void mkdir_p(const char *path) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') { *p = 0; mkdir(buf, 0755); *p = '/'; }
  mkdir(buf, 0755);
}

/* In the child: never returns. Reports an errno on errfd when it cannot exec. */
static void child(const struct spawnreq *r, const struct ident *id, char **env, int errfd) {
  int stage = 1; /* what failed: 1 stdio or chdir, 2 credentials, 0 exec */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL);
  setsid();
  for (int i = 0; i < 3; i++) {
    if (r->stdio[i] != i && dup2(r->stdio[i], i) < 0) goto fail;
  }
  for (int i = 0; i < 3; i++) fcntl(i, F_SETFD, 0);
  if (r->tty) ioctl(0, TIOCSCTTY, 0);
  if (r->mount_proc && mount("proc", r->mount_proc, "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) goto fail;
  if (r->root && (chroot(r->root) || chdir("/"))) goto fail;
  if (chdir(r->cwd && *r->cwd ? r->cwd : "/")) goto fail;
  stage = 2;
  if (setgroups(id->ngroups, id->groups) || setgid(id->gid) || setuid(id->uid)) goto fail;
  stage = 0;
  environ = env;
  execvp(r->argv[0], r->argv);
fail:;
  int e[2] = {errno, stage};
  (void)!write(errfd, e, sizeof e);
  _exit(127);
}

pid_t spawn_process(const struct spawnreq *r, int *code, char *msg, size_t msglen) {
  struct ident id;
  int p[2], e[2] = {0, 0};
  char cwd[4096];
  if (resolve_user_at(r->root ? r->root : "", r->user, &id, msg, msglen)) { *code = 126; return -1; }
  if (r->cwd && *r->cwd) { snprintf(cwd, sizeof cwd, "%s%s", r->root ? r->root : "", r->cwd); mkdir_p(cwd); }
  char **env = full_env(r, &id);
  if (!env || pipe2(p, O_CLOEXEC)) { *code = 125; snprintf(msg, msglen, "out of resources"); free(env); return -1; }
  pid_t pid = fork();
  if (pid == 0) child(r, &id, env, p[1]);
  close(p[1]);
  free(env);
  if (pid < 0) { close(p[0]); *code = 125; snprintf(msg, msglen, "fork: %s", errstr(errno)); return -1; }
  ssize_t n = read(p[0], e, sizeof e); /* EOF (0) = exec succeeded */
  close(p[0]);
  if (n != sizeof e) return pid;
  waitpid(pid, NULL, 0);
  if (e[1]) {
    *code = 125;
    snprintf(msg, msglen, "%s: %s", e[1] == 1 ? "chdir to the working directory" : "switching to the user", errstr(e[0]));
    return -1;
  }
  if (e[0] == ENOENT && !strchr(r->argv[0], '/')) {
    *code = 127;
    snprintf(msg, msglen, "exec: \"%s\": executable file not found in $PATH", r->argv[0]);
  } else if (e[0] == ENOENT) {
    *code = 127;
    snprintf(msg, msglen, "exec: \"%s\": no such file or directory", r->argv[0]);
  } else {
    *code = (e[0] == EACCES || e[0] == ENOEXEC || e[0] == EPERM || e[0] == EISDIR) ? 126 : 125;
    snprintf(msg, msglen, "exec: \"%s\": %s", r->argv[0], errstr(e[0]));
  }
  return -1;
}
