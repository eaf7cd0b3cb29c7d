/*
 * hull-idmap: idmapped bind mounts for a container with its own user namespace, then exec.
 *
 *   hull-idmap UID GID SIZE SRC DST [SRC DST ...] -- PROGRAM [ARG...]
 *
 * Makes a user namespace whose ids 0..SIZE-1 are host UID.. and GID.. (a child process that
 * only holds it while the maps are written), and for each SRC DST pair clones SRC's mount
 * (open_tree), idmaps it with that namespace (mount_setattr MOUNT_ATTR_IDMAP) and attaches it
 * at DST (move_mount), in the caller's mount namespace: hull runs it inside the container's
 * private one, so the mounts go when the container does. A file of host uid 0 in SRC is then
 * seen as UID at DST: the image's layers, shared by every container, look owned by each
 * container's own root without a copy. Needs Linux 5.12 and a filesystem that supports idmapped
 * mounts (ext4, xfs, btrfs; tmpfs from 6.3). Exit 125 with a message when something fails.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

/* linux/mount.h, spelled out: musl's headers do not carry the new mount API */
#ifndef OPEN_TREE_CLONE
#define OPEN_TREE_CLONE 1
#endif
#ifndef OPEN_TREE_CLOEXEC
#define OPEN_TREE_CLOEXEC O_CLOEXEC
#endif
#ifndef MOVE_MOUNT_F_EMPTY_PATH
#define MOVE_MOUNT_F_EMPTY_PATH 0x00000004
#endif
#ifndef MOUNT_ATTR_IDMAP
#define MOUNT_ATTR_IDMAP 0x00100000
#endif
/* the same numbers on every architecture (the unified syscall table of 5.x) */
#ifndef SYS_open_tree
#define SYS_open_tree 428
#endif
#ifndef SYS_move_mount
#define SYS_move_mount 429
#endif
#ifndef SYS_mount_setattr
#define SYS_mount_setattr 442
#endif

struct hull_mount_attr {
  uint64_t attr_set;
  uint64_t attr_clr;
  uint64_t propagation;
  uint64_t userns_fd;
};

static int die(const char *what, const char *arg) {
  fprintf(stderr, "hull-idmap: %s %s: %s\n", what, arg ? arg : "", strerror(errno));
  return 125;
}

static int write_file(const char *path, const char *text) {
  int fd = open(path, O_WRONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  ssize_t n = write(fd, text, strlen(text));
  int saved = errno;
  close(fd);
  errno = saved;
  return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* A user namespace mapping 0..size-1 to uid.. / gid..; returns its fd. */
static int make_userns(unsigned long uid, unsigned long gid, unsigned long size) {
  /* ready: the child says it has its namespace; hold: the parent says it is done with it */
  int ready[2], hold[2];
  if (pipe2(ready, O_CLOEXEC) < 0 || pipe2(hold, O_CLOEXEC) < 0) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    char c = unshare(CLONE_NEWUSER) == 0 ? 'y' : 'n';
    close(ready[0]);
    close(hold[1]);
    if (write(ready[1], &c, 1) != 1) _exit(1);
    /* returns when the parent closes its end (done, or gone) */
    if (read(hold[0], &c, 1) < 0) _exit(1);
    _exit(0);
  }
  close(ready[1]);
  close(hold[0]);
  char path[64], map[96], c = 'n';
  int fd = -1;
  if (read(ready[0], &c, 1) != 1 || c != 'y') {
    errno = c == 'n' ? EPERM : EIO;
    goto out;
  }
  snprintf(path, sizeof path, "/proc/%d/uid_map", pid);
  snprintf(map, sizeof map, "0 %lu %lu\n", uid, size);
  if (write_file(path, map) < 0) goto out;
  snprintf(path, sizeof path, "/proc/%d/gid_map", pid);
  snprintf(map, sizeof map, "0 %lu %lu\n", gid, size);
  if (write_file(path, map) < 0) goto out;
  snprintf(path, sizeof path, "/proc/%d/ns/user", pid);
  fd = open(path, O_RDONLY | O_CLOEXEC);
out:;
  int saved = errno;
  close(ready[0]);
  close(hold[1]);
  waitpid(pid, NULL, 0);
  errno = saved;
  return fd;
}

int main(int argc, char **argv) {
  if (argc < 7) {
    fprintf(stderr, "usage: hull-idmap UID GID SIZE SRC DST [SRC DST ...] -- PROGRAM [ARG...]\n");
    return 125;
  }
  char *end;
  unsigned long uid = strtoul(argv[1], &end, 10), gid, size;
  if (*end) return errno = EINVAL, die("bad uid", argv[1]);
  gid = strtoul(argv[2], &end, 10);
  if (*end) return errno = EINVAL, die("bad gid", argv[2]);
  size = strtoul(argv[3], &end, 10);
  if (*end || size == 0) return errno = EINVAL, die("bad size", argv[3]);
  int i = 4;
  int userns = make_userns(uid, gid, size);
  if (userns < 0) return die("cannot make the user namespace for", argv[1]);
  for (; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2) {
    const char *src = argv[i], *dst = argv[i + 1];
    int fd = (int)syscall(SYS_open_tree, AT_FDCWD, src, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
    if (fd < 0) return die("open_tree", src);
    struct hull_mount_attr attr = {.attr_set = MOUNT_ATTR_IDMAP, .userns_fd = (uint64_t)userns};
    if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) return die("idmapping (mount_setattr) is not supported for", src);
    if (syscall(SYS_move_mount, fd, "", AT_FDCWD, dst, MOVE_MOUNT_F_EMPTY_PATH) < 0) return die("move_mount to", dst);
    close(fd);
  }
  close(userns);
  if (i >= argc || strcmp(argv[i], "--") != 0 || i + 1 >= argc) {
    errno = EINVAL;
    return die("missing -- PROGRAM", NULL);
  }
  execvp(argv[i + 1], argv + i + 1);
  return die("exec", argv[i + 1]);
}
