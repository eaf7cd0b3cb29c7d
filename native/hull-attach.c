/*
 * hull-attach: our stdin into a detached container's stdin, through its monitor's attach socket.
 *
 *   hull-attach SOCKET
 *
 * conmon holds a detached container's stdin (a pipe, or the terminal's master) and takes input
 * from its attach socket, a SOCK_SEQPACKET unix socket, one packet per read of at most 32 KiB.
 * This program connects to SOCKET, copies its stdin there in packets of at most PACKET bytes and
 * ends when its stdin ends: it then shuts its side down (conmon closes the container's stdin
 * unless it runs with --leave-stdin-open) and exits 0.
 *
 * Nothing is dropped and nothing is read ahead without bound: a packet is read from stdin only
 * once the previous one went into the socket, and the socket takes a packet only while conmon
 * keeps up (the kernel's queue of the connection is bounded). conmon also copies the container's
 * output to every attach connection; that is read and thrown away here (the caller reads the
 * container's log), so that conmon never waits on us.
 *
 * At the end of stdin the helper shuts down its sending side, writes "E" to its stdout (the
 * caller's sign that all input went in), and goes on reading until conmon closes the
 * connection (the container's end) or the caller kills it. It does not close the connection
 * itself: a unix socket closed with output still unread in it resets the connection, and
 * conmon 2.1 then leaves the container's stdin open (`docker run -i cat` hung on that).
 *
 * Exits 0 when conmon closed the connection, 3 when SOCKET exists but nothing listens on it
 * (ECONNREFUSED), 2 on any other error, with a message on stderr.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include "sockpath.h"

#define PACKET 8192

static int fail(const char *what, int code) {
  fprintf(stderr, "hull-attach: %s: %s\n", what, strerror(errno));
  return code;
}

int main(int argc, char **argv) {
  static char in[PACKET], junk[65536];
  if (argc != 2) {
    fprintf(stderr, "usage: hull-attach SOCKET\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (s < 0) return fail("socket", 2);
  struct sockaddr_un a;
  if (sockaddr_for(&a, argv[1]) || connect(s, (struct sockaddr *)&a, sizeof a) < 0) return fail(argv[1], errno == ECONNREFUSED ? 3 : 2);
  if (fcntl(s, F_SETFL, fcntl(s, F_GETFL) | O_NONBLOCK) < 0) return fail("fcntl", 2);
  size_t len = 0; /* bytes of `in` waiting to go out as one packet */
  int eof = 0;
  for (;;) {
    struct pollfd p[2] = {{.fd = s, .events = POLLIN | (len ? POLLOUT : 0)}, {.fd = len || eof ? -1 : 0, .events = POLLIN}};
    /* eof: 1 = stdin ended, 2 = and the sending side is shut down */
    if (poll(p, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return fail("poll", 2);
    }
    if (p[0].revents & POLLIN) {
      ssize_t n = recv(s, junk, sizeof junk, 0);
      if (n == 0) return 0; /* conmon closed the connection: the container is gone */
      if (n < 0 && errno != EAGAIN && errno != EINTR) return errno == ECONNRESET ? 0 : fail("recv", 2);
    } else if (p[0].revents & (POLLHUP | POLLERR)) {
      return 0;
    }
    if (len && (p[0].revents & POLLOUT)) {
      ssize_t n = send(s, in, len, MSG_NOSIGNAL);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return errno == EPIPE || errno == ECONNRESET ? 0 : fail("send", 2);
      if (n > 0) len = 0; /* a packet goes whole or not at all */
    }
    if (!len && !eof && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      ssize_t n = read(0, in, sizeof in);
      if (n < 0 && errno != EAGAIN && errno != EINTR) return fail("read stdin", 2);
      if (n == 0) eof = 1;
      if (n > 0) len = (size_t)n;
    }
    if (eof == 1 && !len) {
      shutdown(s, SHUT_WR);
      if (write(1, "E", 1) < 0) { /* the caller went away: it kills us too */
      }
      eof = 2;
    }
  }
}
