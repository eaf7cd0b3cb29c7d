/*
 * hull-tapfd: open tap devices that live in another network namespace and exec a program
 * (QEMU) that inherits them as numbered descriptors.
 *
 *   hull-tapfd NETNS FD:TAP [FD:TAP...] -- PROGRAM [ARG...]
 *
 * NETNS is a network namespace file (a bind-mounted /proc/PID/ns/net). The helper enters it,
 * opens /dev/net/tun and attaches each TAP (which must already exist there: `ip tuntap add`) with
 * IFF_TAP|IFF_NO_PI|IFF_VNET_HDR, moves the descriptor to FD, goes back to its own namespace and
 * execs PROGRAM. QEMU then uses `-netdev tap,fd=FD,vhost=off`, so it needs neither root,
 * CAP_NET_ADMIN nor access to /dev/net/tun, and never runs in the container's namespace.
 *
 * Exit 125 with a message on stderr when anything fails before the exec.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

unsigned int if_nametoindex(const char *ifname); /* <net/if.h> clashes with <linux/if.h> */

#define MAXTAPS 8

static int die(const char *what, const char *arg) {
  fprintf(stderr, "hull-tapfd: %s%s%s: %s\n", what, arg ? " " : "", arg ? arg : "", strerror(errno));
  return 125;
}

int main(int argc, char **argv) {
  int fds[MAXTAPS];
  char *taps[MAXTAPS];
  int n = 0, i = 2;
  if (argc < 5) {
    fprintf(stderr, "usage: hull-tapfd NETNS FD:TAP [FD:TAP...] -- PROGRAM [ARG...]\n");
    return 125;
  }
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    char *colon = strchr(argv[i], ':');
    char *end = NULL;
    long fd = colon ? strtol(argv[i], &end, 10) : -1;
    if (!colon || end != colon || fd < 3 || fd > 1023 || n == MAXTAPS || strlen(colon + 1) == 0 || strlen(colon + 1) >= IFNAMSIZ) {
      fprintf(stderr, "hull-tapfd: bad FD:TAP argument '%s'\n", argv[i]);
      return 125;
    }
    fds[n] = (int)fd;
    taps[n++] = colon + 1;
  }
  if (i >= argc - 1 || n == 0) {
    fprintf(stderr, "hull-tapfd: no program after --\n");
    return 125;
  }
  /* kept above the FD range, so no dup2 below lands on them */
  int self = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  if (self < 0 || (self = fcntl(self, F_DUPFD_CLOEXEC, 1024)) < 0) return die("open", "/proc/self/ns/net");
  int target = open(argv[1], O_RDONLY | O_CLOEXEC);
  if (target < 0 || (target = fcntl(target, F_DUPFD_CLOEXEC, 1024)) < 0) return die("open network namespace", argv[1]);
  if (setns(target, CLONE_NEWNET)) return die("enter network namespace", argv[1]);
  for (int k = 0; k < n; k++) {
    /* TUNSETIFF would create a missing tap: only attach to one that was made for this VM */
    if (if_nametoindex(taps[k]) == 0) return die("attach tap", taps[k]);
    int t = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (t < 0) return die("open", "/dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    strncpy(ifr.ifr_name, taps[k], IFNAMSIZ - 1);
    if (ioctl(t, TUNSETIFF, &ifr)) return die("attach tap", taps[k]);
    /* dup2 clears close-on-exec on the new descriptor: the program inherits it */
    if (t != fds[k] && dup2(t, fds[k]) < 0) return die("dup2 tap", taps[k]);
    if (t == fds[k]) fcntl(t, F_SETFD, 0);
    else close(t);
  }
  if (setns(self, CLONE_NEWNET)) return die("return to own network namespace", NULL);
  close(self);
  close(target);
  execvp(argv[i + 1], argv + i + 1);
  return die("exec", argv[i + 1]);
}
