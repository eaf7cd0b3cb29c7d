/*
 * hull-inroot: run a static host program with another root filesystem as its root (docker cp
 * and the archive routes: a container's root seen through /proc/PID/root, or a stopped
 * container's overlay mounted in a private mount namespace).
 *
 *   hull-inroot ROOT PROGRAM ARGV0 [ARG...]
 *
 * PROGRAM (a static binary on the host, e.g. busybox) is opened first; then the helper changes
 * into ROOT and chroots there, so every path the program touches, symlinks included, resolves
 * inside ROOT and never on the host; finally PROGRAM runs from its descriptor (execveat with
 * AT_EMPTY_PATH) as ARGV0 (a busybox applet name: tar, stat, readlink, test). The environment
 * is replaced by PATH=/bin:/usr/bin only. Exit 125 with a message when anything fails before the exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef AT_EMPTY_PATH
#define AT_EMPTY_PATH 0x1000
#endif

static int die(const char *what, const char *arg) {
  fprintf(stderr, "hull-inroot: %s %s: %s\n", what, arg, strerror(errno));
  return 125;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: hull-inroot ROOT PROGRAM ARGV0 [ARG...]\n");
    return 125;
  }
  int prog = open(argv[2], O_RDONLY | O_CLOEXEC);
  if (prog < 0) return die("open", argv[2]);
  int root = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (root < 0) return die("open", argv[1]);
  if (fchdir(root) != 0) return die("fchdir", argv[1]);
  if (chroot(".") != 0) return die("chroot", argv[1]);
  if (chdir("/") != 0) return die("chdir", "/");
  char *envp[] = {"PATH=/bin:/usr/bin", NULL};
  syscall(SYS_execveat, prog, "", &argv[3], envp, AT_EMPTY_PATH);
  return die("execveat", argv[2]);
}
