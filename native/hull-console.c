/*
 * hull-console: the terminal side of a foreground `crun run` or `crun exec` with a TTY.
 *
 *   hull-console SOCKET [--resize FIFO] [--stdin] -- PROGRAM [ARG...]
 *
 * Listens on the unix socket SOCKET, runs PROGRAM (crun, given --console-socket SOCKET), takes
 * the pseudo-terminal master crun sends over it and copies: our stdin to the master (only with
 * --stdin), the master to our stdout. Left to itself crun copies the terminal in its own loop,
 * and whatever is still unread when the process exits goes to crun's log or stderr as error
 * messages (a newline added per 255-byte chunk, colour codes on a tty): the end of the
 * session's output was lost or mangled. Here the master is read until it has nothing left
 * after PROGRAM exited (the process has exited by then, so all it wrote is in the terminal).
 *
 * When our stdin is a terminal and is copied (--stdin) it is put in raw mode for the session
 * (restored at the end). The window size follows our own terminal's, when we have one (on
 * SIGWINCH too); the first size asked through the API is the process's consoleSize, which the
 * runtime applies before it sends the master; each "ROWS COLS" line written to the FIFO --resize
 * (made by the helper, removed at the end) is a later one (the Engine API's resize).
 *
 * Exits with PROGRAM's status (128+N when killed by signal N); 125 with a message on stderr
 * when anything fails before PROGRAM runs.
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
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include "sockpath.h"

static int wake[2] = {-1, -1}; /* self-pipe: SIGCHLD and SIGWINCH */
static const char *sock_path, *fifo_path;
static struct termios saved;
static int raw_on;

static void restore(void) {
  if (raw_on) tcsetattr(0, TCSADRAIN, &saved);
  raw_on = 0;
  if (sock_path) unlink(sock_path);
  if (fifo_path) unlink(fifo_path);
  sock_path = fifo_path = NULL;
}

static int die(const char *what) {
  fprintf(stderr, "hull-console: %s: %s\n", what, strerror(errno));
  restore();
  return 125;
}

static void on_signal(int sig) {
  int e = errno;
  char c = (char)sig;
  if (write(wake[1], &c, 1) < 0) { /* the pipe is full: a wake-up is already pending */
  }
  errno = e;
}

/* bind+listen; a path longer than sun_path is reached through /proc/self/fd of its directory */
static int listen_on(const char *path) {
  struct sockaddr_un a;
  if (sockaddr_for(&a, path)) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  unlink(path); /* a socket a killed session left */
  mode_t old = umask(077);
  int r = bind(fd, (struct sockaddr *)&a, sizeof a);
  umask(old);
  if (r || listen(fd, 1)) return -1;
  return fd;
}

/* the descriptor crun sends (SCM_RIGHTS) on a connection accepted from lfd, or -1 */
static int take_master(int lfd) {
  int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
  if (c < 0) return -1;
  char byte[256];
  char ctl[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {byte, sizeof byte};
  struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
  int fd = -1;
  ssize_t n;
  do n = recvmsg(c, &m, MSG_CMSG_CLOEXEC);
  while (n < 0 && errno == EINTR);
  for (struct cmsghdr *h = n > 0 ? CMSG_FIRSTHDR(&m) : NULL; h; h = CMSG_NXTHDR(&m, h))
    if (h->cmsg_level == SOL_SOCKET && h->cmsg_type == SCM_RIGHTS) memcpy(&fd, CMSG_DATA(h), sizeof fd);
  close(c);
  return fd;
}

static int write_all(int fd, const char *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      struct pollfd q = {fd, POLLOUT, 0};
      poll(&q, 1, -1);
      continue;
    }
    if (w <= 0) return -1;
    p += w;
    n -= (size_t)w;
  }
  return 0;
}

static void set_size(int master, int rows, int cols) {
  struct winsize ws = {.ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols};
  if (master >= 0 && rows > 0 && cols > 0) ioctl(master, TIOCSWINSZ, &ws);
}

/* the window size of our own terminal (stdin, else stdout), when there is one */
static void follow_terminal(int master) {
  struct winsize ws;
  for (int fd = 0; master >= 0 && fd < 2; fd++)
    if (isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0) {
      ioctl(master, TIOCSWINSZ, &ws);
      return;
    }
}

int main(int argc, char **argv) {
  int i = 2, want_stdin = 0;
  const char *fifo = NULL;
  if (argc < 4) {
    fprintf(stderr, "usage: hull-console SOCKET [--resize FIFO] [--stdin] -- PROGRAM [ARG...]\n");
    return 125;
  }
  for (; i < argc && strcmp(argv[i], "--") != 0; i++) {
    if (strcmp(argv[i], "--resize") == 0 && i + 1 < argc) fifo = argv[++i];
    else if (strcmp(argv[i], "--stdin") == 0) want_stdin = 1;
    else {
      fprintf(stderr, "hull-console: bad argument '%s'\n", argv[i]);
      return 125;
    }
  }
  if (i >= argc - 1) {
    fprintf(stderr, "hull-console: no program after --\n");
    return 125;
  }
  char **prog = argv + i + 1;
  if (pipe2(wake, O_CLOEXEC | O_NONBLOCK)) return die("pipe");
  struct sigaction sa = {.sa_handler = on_signal, .sa_flags = SA_RESTART | SA_NOCLDSTOP};
  sigemptyset(&sa.sa_mask);
  sigaction(SIGCHLD, &sa, NULL);
  sigaction(SIGWINCH, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  int lfd = listen_on(argv[1]);
  if (lfd < 0) return die(argv[1]);
  sock_path = argv[1];
  int ffd = -1;
  if (fifo) {
    unlink(fifo);
    if (mkfifo(fifo, 0600)) return die(fifo);
    fifo_path = fifo;
    /* read and write: the FIFO never reads as ended between two writers */
    if ((ffd = open(fifo, O_RDWR | O_NONBLOCK | O_CLOEXEC)) < 0) return die(fifo);
  }

  pid_t child = fork();
  if (child < 0) return die("fork");
  if (child == 0) {
    /* crun reads no input and writes no output of the session: only its errors, to stderr */
    int null = open("/dev/null", O_RDWR);
    if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0) _exit(125);
    signal(SIGPIPE, SIG_DFL);
    execvp(prog[0], prog);
    fprintf(stderr, "hull-console: cannot run %s: %s\n", prog[0], strerror(errno));
    _exit(127);
  }

  int master = -1, status = 0, exited = 0, in_open = want_stdin, out_ok = 1;
  char buf[65536], line[64];
  size_t line_len = 0;
  char *pend = NULL; /* stdin read but not yet taken by the terminal */
  size_t pend_len = 0, pend_off = 0;
  char inbuf[65536];
  for (;;) {
    struct pollfd p[5];
    int n = 0, pw = n;
    p[n++] = (struct pollfd){wake[0], POLLIN, 0};
    int pl = -1, pm = -1, pi = -1, pf = -1;
    if (lfd >= 0) p[pl = n++] = (struct pollfd){lfd, POLLIN, 0};
    if (master >= 0) p[pm = n++] = (struct pollfd){master, (short)(POLLIN | (pend_len > pend_off ? POLLOUT : 0)), 0};
    if (master >= 0 && in_open && pend_len == pend_off) p[pi = n++] = (struct pollfd){0, POLLIN, 0};
    if (ffd >= 0) p[pf = n++] = (struct pollfd){ffd, POLLIN, 0};
    if (exited) break;
    if (poll(p, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      return die("poll");
    }
    if (p[pw].revents) {
      char sig[64];
      while (read(wake[0], sig, sizeof sig) > 0) {
      }
      follow_terminal(master);
      pid_t w;
      while ((w = waitpid(child, &status, WNOHANG)) < 0 && errno == EINTR) {
      }
      if (w == child) exited = 1;
    }
    if (pl >= 0 && (p[pl].revents || exited)) {
      int m = take_master(lfd);
      if (m >= 0) {
        master = m;
        fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK);
        close(lfd);
        lfd = -1;
        unlink(sock_path);
        sock_path = NULL;
        follow_terminal(master);
        if (want_stdin && isatty(0) && tcgetattr(0, &saved) == 0) {
          struct termios t = saved;
          cfmakeraw(&t);
          if (tcsetattr(0, TCSADRAIN, &t) == 0) raw_on = 1;
        }
      }
    }
    if (exited) break;
    if (pf >= 0 && p[pf].revents & POLLIN) {
      ssize_t r = read(ffd, line + line_len, sizeof line - 1 - line_len);
      if (r > 0) line_len += (size_t)r;
      char *nl;
      while ((nl = memchr(line, '\n', line_len))) {
        *nl = 0;
        int r2, c2;
        if (sscanf(line, "%d %d", &r2, &c2) == 2) set_size(master, r2, c2);
        line_len -= (size_t)(nl + 1 - line);
        memmove(line, nl + 1, line_len);
      }
      if (line_len == sizeof line - 1) line_len = 0; /* a line too long to be a size */
    }
    if (pm >= 0 && p[pm].revents & (POLLIN | POLLHUP | POLLERR)) {
      ssize_t r = read(master, buf, sizeof buf);
      if (r > 0) {
        if (out_ok && write_all(1, buf, (size_t)r) < 0) out_ok = 0; /* reader gone: keep draining */
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        /* EIO: every holder of the terminal's other side has closed it */
        close(master);
        master = -1;
        in_open = 0;
      }
    }
    if (pm >= 0 && master >= 0 && p[pm].revents & POLLOUT && pend_len > pend_off) {
      ssize_t w = write(master, pend + pend_off, pend_len - pend_off);
      if (w > 0) pend_off += (size_t)w;
      else if (w < 0 && errno != EAGAIN && errno != EINTR) pend_off = pend_len;
    }
    if (pi >= 0 && p[pi].revents) {
      ssize_t r = read(0, inbuf, sizeof inbuf);
      if (r > 0) {
        pend = inbuf;
        pend_off = 0;
        pend_len = (size_t)r;
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        in_open = 0; /* end of input: the terminal stays open, as docker's does */
      }
    }
    if (pend_len == pend_off) pend_len = pend_off = 0;
  }
  /* the program (and with it the process) has exited: what the terminal still holds is the end of
   * the session's output */
  if (master >= 0) {
    for (;;) {
      ssize_t r = read(master, buf, sizeof buf);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      if (out_ok && write_all(1, buf, (size_t)r) < 0) out_ok = 0;
    }
    close(master);
  }
  restore();
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return WEXITSTATUS(status);
}
