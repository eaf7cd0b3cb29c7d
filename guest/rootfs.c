/* Mounts: initramfs basics, the image root (erofs + tmpfs overlay), a container-like /dev. */
#include "rootfs.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define NEWROOT "/mnt/root"
#define STAGE "/mnt/stage"

int rootfs_upper_fd = -1;
/* stage_root() ran: /mnt/rw (with upper/ and work/) and STAGE/{proc,sys,dev} are mounted */
static int staged;

static int fail(char *msg, size_t msglen, const char *what, const char *path) {
  snprintf(msg, msglen, "%s %s: %s", what, path, strerror(errno));
  return -1;
}

static void mkdir_p(const char *path, mode_t mode) {
  char buf[4096];
  snprintf(buf, sizeof buf, "%s", path);
  for (char *p = buf + 1; *p; p++)
    if (*p == '/') { *p = 0; mkdir(buf, 0755); *p = '/'; }
  mkdir(buf, mode);
}

int mount_early(char *msg, size_t msglen) {
  mkdir("/dev", 0755);
  mkdir("/proc", 0555);
  mkdir("/sys", 0555);
  if (mount("devtmpfs", "/dev", "devtmpfs", MS_NOSUID, "mode=0755")) return fail(msg, msglen, "mount", "/dev");
  if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) return fail(msg, msglen, "mount", "/proc");
  if (mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) return fail(msg, msglen, "mount", "/sys");
  return 0;
}

/* A tmpfs /dev with the nodes docker gives a container; the VM's own devices (ports, disk) are
 * not in it, so the workload cannot write to the agent's channels. */
int make_dev(const char *root, char *msg, size_t msglen) {
  static const struct { const char *name; int maj, min; } nodes[] = {
    {"null", 1, 3}, {"zero", 1, 5}, {"full", 1, 7}, {"random", 1, 8}, {"urandom", 1, 9}, {"tty", 5, 0},
  };
  char p[4096];
  snprintf(p, sizeof p, "%s/dev", root);
  mkdir(p, 0755);
  if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755,size=65536k")) return fail(msg, msglen, "mount", p);
  for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
    snprintf(p, sizeof p, "%s/dev/%s", root, nodes[i].name);
    if (mknod(p, S_IFCHR | 0666, makedev(nodes[i].maj, nodes[i].min))) return fail(msg, msglen, "mknod", p);
  }
  snprintf(p, sizeof p, "%s/dev/pts", root);
  mkdir(p, 0755);
  if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC, "newinstance,ptmxmode=0666,mode=0620,gid=5")) return fail(msg, msglen, "mount", p);
  snprintf(p, sizeof p, "%s/dev/shm", root);
  mkdir(p, 01777);
  if (mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=1777,size=65536k")) return fail(msg, msglen, "mount", p);
  static const char *links[][2] = {
    {"pts/ptmx", "ptmx"}, {"/proc/self/fd", "fd"}, {"/proc/self/fd/0", "stdin"},
    {"/proc/self/fd/1", "stdout"}, {"/proc/self/fd/2", "stderr"},
  };
  for (size_t i = 0; i < sizeof links / sizeof links[0]; i++) {
    snprintf(p, sizeof p, "%s/dev/%s", root, links[i][1]);
    if (symlink(links[i][0], p)) return fail(msg, msglen, "symlink", p);
  }
  return 0;
}

/*
 * A template's mounts that hold nothing of a run (guest/snapshot.c): the tmpfs of the writable
 * layer (upper/ and work/ empty), proc, a read-only sysfs and the container /dev, mounted
 * before the snapshot so that a restored run moves them into its root instead of mounting them:
 * under TCG every kernel path a restored guest runs is translated afresh, and these are many.
 */
int stage_root(char *msg, size_t msglen) {
  mkdir("/mnt", 0755);
  mkdir("/mnt/rw", 0755);
  mkdir(STAGE, 0755);
  mkdir(STAGE "/proc", 0555);
  mkdir(STAGE "/sys", 0555);
  if (mount("rw", "/mnt/rw", "tmpfs", 0, "mode=0755")) return fail(msg, msglen, "mount", "/mnt/rw");
  mkdir("/mnt/rw/upper", 0755);
  mkdir("/mnt/rw/work", 0755);
  if (mount("proc", STAGE "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) return fail(msg, msglen, "mount", STAGE "/proc");
  if (mount("sysfs", STAGE "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL)) return fail(msg, msglen, "mount", STAGE "/sys");
  if (make_dev(STAGE, msg, msglen)) return -1;
  staged = 1;
  return 0;
}

/* In a mount namespace of its own (a pool's rehearsal): the staged mounts copied into it share
 * their filesystems with the agent's, so they are dropped and staged afresh. */
int restage_root(char *msg, size_t msglen) {
  static const char *m[] = {"/mnt/rw", STAGE "/proc", STAGE "/sys", STAGE "/dev"};
  for (size_t i = 0; staged && i < sizeof m / sizeof m[0]; i++)
    if (umount2(m[i], MNT_DETACH)) return fail(msg, msglen, "unmount", m[i]);
  staged = 0;
  return stage_root(msg, msglen);
}

static int move_staged(const char *what, char *msg, size_t msglen) {
  char from[64], to[64];
  snprintf(from, sizeof from, STAGE "/%s", what);
  snprintf(to, sizeof to, NEWROOT "/%s", what);
  mkdir_p(to, 0755);
  if (mount(from, to, NULL, MS_MOVE, NULL)) return fail(msg, msglen, "move", to);
  return 0;
}

/* /etc/hostname and /etc/hosts, as docker provides them (written into the tmpfs upper layer). */
static void write_host_files(const char *hostname) {
  char p[4096];
  FILE *f;
  struct stat st;
  if (stat(NEWROOT "/etc", &st) || !S_ISDIR(st.st_mode)) return;
  snprintf(p, sizeof p, NEWROOT "/etc/hostname");
  if ((f = fopen(p, "we"))) { fprintf(f, "%s\n", hostname); fclose(f); }
  snprintf(p, sizeof p, NEWROOT "/etc/hosts");
  if ((f = fopen(p, "we"))) { fprintf(f, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n127.0.1.1\t%s\n", hostname); fclose(f); }
}

int enter_root(const struct spec *s, char *msg, size_t msglen) {
  char p[4096];
  mkdir("/mnt", 0755);
  mkdir("/mnt/lower", 0755);
  mkdir("/mnt/rw", 0755);
  mkdir(NEWROOT, 0755);
  if (mount("/dev/vda", "/mnt/lower", "erofs", MS_RDONLY, NULL)) return fail(msg, msglen, "mount image disk", "/dev/vda");
  if (!staged) {
    if (mount("rw", "/mnt/rw", "tmpfs", 0, "mode=0755")) return fail(msg, msglen, "mount", "/mnt/rw");
    mkdir("/mnt/rw/upper", 0755);
    mkdir("/mnt/rw/work", 0755);
  }
  if (mount("overlay", NEWROOT, "overlay", 0, "lowerdir=/mnt/lower,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work"))
    return fail(msg, msglen, "mount overlay", NEWROOT);
  /* always: a running VM sends its layer on request (T_LAYER), a stopped one at exit (R_LAYER) */
  if ((rootfs_upper_fd = open("/mnt/rw/upper", O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
    return fail(msg, msglen, "open", "/mnt/rw/upper");
  if (s->hostname) write_host_files(s->hostname);
  net_write_etc(NEWROOT, &s->net); /* the host's /etc/hosts and /etc/resolv.conf, when it sent them */
  if (staged) {
    if (move_staged("proc", msg, msglen) || move_staged("sys", msg, msglen) || move_staged("dev", msg, msglen)) return -1;
  } else {
    mkdir_p(NEWROOT "/proc", 0555);
    mkdir_p(NEWROOT "/sys", 0555);
    if (mount("proc", NEWROOT "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL)) return fail(msg, msglen, "mount", "/proc");
    if (mount("sysfs", NEWROOT "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_RDONLY, NULL)) return fail(msg, msglen, "mount", "/sys");
    if (make_dev(NEWROOT, msg, msglen)) return -1;
  }
  for (int i = 0; i < s->ntmpfs; i++) {
    snprintf(p, sizeof p, NEWROOT "%s", s->tmpfs[i].a);
    mkdir_p(p, 0755);
    if (mount("tmpfs", p, "tmpfs", MS_NOSUID | MS_NODEV, *s->tmpfs[i].b ? s->tmpfs[i].b : NULL))
      return fail(msg, msglen, "mount tmpfs", s->tmpfs[i].a);
  }
  for (int i = 0; i < s->nshares; i++) {
    snprintf(p, sizeof p, NEWROOT "%s", s->shares[i].b);
    mkdir_p(p, 0755);
    if (mount(s->shares[i].a, p, "9p", s->shares[i].ro ? MS_RDONLY : 0, "trans=virtio,version=9p2000.L,msize=262144,cache=none"))
      return fail(msg, msglen, "mount volume", s->shares[i].b);
  }
  if (s->cwd && *s->cwd) { /* like docker, the working directory exists even on a read-only root */
    snprintf(p, sizeof p, NEWROOT "%s", s->cwd);
    mkdir_p(p, 0755);
  }
  if (s->readonly && mount(NULL, NEWROOT, NULL, MS_REMOUNT | MS_RDONLY, NULL)) return fail(msg, msglen, "remount read-only", "/");
  if (chdir(NEWROOT) || mount(".", "/", NULL, MS_MOVE, NULL) || chroot(".") || chdir("/"))
    return fail(msg, msglen, "switch root to", NEWROOT);
  return 0;
}
