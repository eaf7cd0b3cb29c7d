/*
 * hull-vmmux: many host callers on one VM's control port.
 *
 *   hull-vmmux AGENT_SOCKET LISTEN_SOCKET
 *
 * QEMU serves the guest agent's hull.ctl port as a unix socket that takes one client at a
 * time, so a second `hull exec` into the same VM used to wait in the backlog until the first
 * ended. The agent itself runs up to 16 exec sessions on that one port, told apart by the
 * frame's channel (guest/PROTOCOL.md). This program, started beside QEMU and living as long as
 * it does, is that one client: it accepts any number of host callers on LISTEN_SOCKET and gives
 * each caller's channels agent-wide numbers of their own, rewriting the channel of every frame
 * each way. Channel 0 (SIGNAL and SHUTDOWN of the main process) passes through unchanged.
 *
 * Nothing blocks: every socket is non-blocking with a bounded queue. While the agent's queue is
 * full no caller is read; while a caller's queue is full the agent is not read (backpressure,
 * never a dropped byte). A caller that sends a malformed frame is disconnected. When a caller
 * leaves, the agent is told to SIGKILL its sessions that still run (as when the single client
 * of the port used to disconnect). When QEMU's end closes, everything closes and this exits.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define VERSION 1
#define HEADER 8
#define MAX_PAYLOAD 65536
#define T_EXEC 0x10
#define T_SIGNAL 0x13
#define T_LAYER 0x16 /* like EXEC, it opens a session: the layer's frames, then EXIT */
#define T_EXIT 0x23
#define T_ERROR 0x24
#define MAX_CLIENTS 64
#define MAX_SESSIONS 64         /* agent-wide channel numbers in use at once (the agent runs 16) */
#define QUEUE_HIGH (1u << 20)   /* stop reading the other side above this many queued bytes */
#define QUEUE_MAX (4u << 20)

struct buf {
  uint8_t *p;
  size_t len, cap;
};

struct client {
  int fd;
  struct buf in, out;
};

struct session {
  int used;
  int client;      /* index into clients, -1 once that caller left (waiting for EXIT) */
  uint16_t local;  /* the caller's channel */
  int pending;     /* EXEC sent, no answer yet: an ERROR now means the agent refused it */
};

static struct client clients[MAX_CLIENTS];
static struct session sessions[MAX_SESSIONS + 1]; /* agent channel g = index, 1..MAX_SESSIONS */
static int agent = -1;
static struct buf agent_in, agent_out;

static void die(const char *what) {
  fprintf(stderr, "hull-vmmux: %s: %s\n", what, strerror(errno));
  exit(1);
}

static int put(struct buf *b, const void *d, size_t n) {
  if (b->len + n > QUEUE_MAX) return -1;
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 65536 + HEADER;
    while (cap < b->len + n) cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) return -1;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, d, n);
  b->len += n;
  return 0;
}

static void drop(struct buf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

static void frame(struct buf *b, uint8_t type, uint16_t ch, const void *d, uint32_t n) {
  uint8_t h[HEADER] = {VERSION, type};
  memcpy(h + 2, &ch, 2);
  memcpy(h + 4, &n, 4);
  if (put(b, h, HEADER) == 0 && n) put(b, d, n);
}

/* Flush what a queue holds to fd; -1 when the peer is gone. */
static int flush(int fd, struct buf *b) {
  while (b->len) {
    ssize_t w = write(fd, b->p, b->len);
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) return 0;
    if (w <= 0) return -1;
    drop(b, (size_t)w);
  }
  return 0;
}

static void nonblock(int fd) {
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void client_gone(int c) {
  close(clients[c].fd);
  clients[c].fd = -1;
  free(clients[c].in.p);
  free(clients[c].out.p);
  memset(&clients[c].in, 0, sizeof clients[c].in);
  memset(&clients[c].out, 0, sizeof clients[c].out);
  for (int g = 1; g <= MAX_SESSIONS; g++) {
    if (!sessions[g].used || sessions[g].client != c) continue;
    uint32_t sig = SIGKILL;
    frame(&agent_out, T_SIGNAL, (uint16_t)g, &sig, 4);
    sessions[g].client = -1; /* keep the number until the agent reports the exit */
  }
}

static int session_of(int c, uint16_t local) {
  for (int g = 1; g <= MAX_SESSIONS; g++)
    if (sessions[g].used && sessions[g].client == c && sessions[g].local == local) return g;
  return 0;
}

/* Whole frames from caller c go to the agent with agent-wide channels. */
static int from_client(int c) {
  struct client *cl = &clients[c];
  size_t off = 0;
  while (cl->in.len - off >= HEADER) {
    uint8_t *h = cl->in.p + off;
    uint16_t ch;
    uint32_t n;
    memcpy(&ch, h + 2, 2);
    memcpy(&n, h + 4, 4);
    if (h[0] != VERSION || n > MAX_PAYLOAD) return -1;
    if (cl->in.len - off < HEADER + n) break;
    uint16_t g = 0;
    if (ch != 0) {
      g = (uint16_t)session_of(c, ch);
      if (!g && (h[1] == T_EXEC || h[1] == T_LAYER)) {
        for (int i = 1; i <= MAX_SESSIONS && !g; i++)
          if (!sessions[i].used) g = (uint16_t)i;
        if (!g) {
          static const char m[] = "exec: too many exec sessions in this VM";
          frame(&cl->out, T_ERROR, ch, m, sizeof m - 1);
          off += HEADER + n;
          continue;
        }
        sessions[g] = (struct session){.used = 1, .client = c, .local = ch, .pending = 1};
      }
      if (!g) { /* a frame for a session this caller does not have: drop it */
        off += HEADER + n;
        continue;
      }
    }
    memcpy(h + 2, &g, 2);
    if (put(&agent_out, h, HEADER + n)) return -1;
    off += HEADER + n;
  }
  drop(&cl->in, off);
  return 0;
}

/* Whole frames from the agent go to the caller that owns their channel. */
static void from_agent(void) {
  size_t off = 0;
  while (agent_in.len - off >= HEADER) {
    uint8_t *h = agent_in.p + off;
    uint16_t g;
    uint32_t n;
    memcpy(&g, h + 2, 2);
    memcpy(&n, h + 4, 4);
    if (h[0] != VERSION || n > MAX_PAYLOAD) {
      fprintf(stderr, "hull-vmmux: malformed frame from the agent\n");
      exit(1);
    }
    if (agent_in.len - off < HEADER + n) break;
    if (g == 0) { /* the agent's own complaints (a bad frame): every caller hears them */
      for (int c = 0; c < MAX_CLIENTS; c++)
        if (clients[c].fd >= 0) put(&clients[c].out, h, HEADER + n);
    } else if (g <= MAX_SESSIONS && sessions[g].used) {
      int c = sessions[g].client;
      if (c >= 0) {
        memcpy(h + 2, &sessions[g].local, 2);
        put(&clients[c].out, h, HEADER + n);
      }
      if (h[1] == T_EXIT || (h[1] == T_ERROR && sessions[g].pending)) sessions[g].used = 0;
      sessions[g].pending = 0;
    }
    off += HEADER + n;
  }
  drop(&agent_in, off);
}

/* A unix socket address for path (dies when it does not fit sun_path). */
static struct sockaddr_un unix_addr(const char *path) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof a.sun_path) {
    errno = ENAMETOOLONG;
    die(path);
  }
  strcpy(a.sun_path, path);
  return a;
}

static int connect_agent(const char *path) {
  struct sockaddr_un a = unix_addr(path);
  struct timespec nap = {0, 2 * 1000 * 1000};
  for (int i = 0; i < 30000; i++) { /* QEMU may not listen yet: up to a minute */
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) return fd;
    close(fd);
    if (errno != ENOENT && errno != ECONNREFUSED) die(path);
    nanosleep(&nap, NULL);
  }
  errno = ETIMEDOUT;
  die(path);
  return -1;
}

static int listen_on(const char *path) {
  /* bind to a temporary name, then rename: callers never meet a socket that does not listen */
  char tmp[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  struct sockaddr_un a = unix_addr(tmp);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) die("socket");
  unlink(path);
  mode_t old = umask(077);
  unlink(tmp);
  if (bind(fd, (struct sockaddr *)&a, sizeof a) || listen(fd, 64)) die(tmp);
  umask(old);
  if (rename(tmp, path)) die(path);
  return fd;
}

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: hull-vmmux AGENT_SOCKET LISTEN_SOCKET\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  /* QEMU's descriptors (kernel, disk, log, the attached run's sockets) are not ours to hold */
  for (int fd = 3; fd < 1024; fd++) close(fd);
  for (int c = 0; c < MAX_CLIENTS; c++) clients[c].fd = -1;
  agent = connect_agent(argv[1]);
  nonblock(agent);
  int lfd = listen_on(argv[2]);
  uint8_t rd[65536];
  for (;;) {
    struct pollfd pf[2 + MAX_CLIENTS];
    int idx[2 + MAX_CLIENTS];
    int n = 0;
    int callers_full = 0;
    for (int c = 0; c < MAX_CLIENTS; c++) if (clients[c].fd >= 0 && clients[c].out.len > QUEUE_HIGH) callers_full = 1;
    pf[n] = (struct pollfd){.fd = agent, .events = (callers_full ? 0 : POLLIN) | (agent_out.len ? POLLOUT : 0)};
    idx[n++] = -1;
    pf[n] = (struct pollfd){.fd = lfd, .events = POLLIN};
    idx[n++] = -2;
    for (int c = 0; c < MAX_CLIENTS; c++) {
      if (clients[c].fd < 0) continue;
      short ev = (agent_out.len > QUEUE_HIGH ? 0 : POLLIN) | (clients[c].out.len ? POLLOUT : 0);
      /* Not read while the agent's queue is full: not polled at all then, since a caller that
       * closed after its last bytes shows POLLHUP, and taking that for its end would drop
       * those bytes, still unread in the socket (the end of a stdin, a STDIN_EOF). */
      pf[n] = (struct pollfd){.fd = ev ? clients[c].fd : -1, .events = ev};
      idx[n++] = c;
    }
    if (poll(pf, (nfds_t)n, -1) < 0) {
      if (errno == EINTR) continue;
      die("poll");
    }
    for (int i = 0; i < n; i++) {
      short re = pf[i].revents;
      if (!re) continue;
      if (idx[i] == -1) {
        if (re & POLLIN) {
          ssize_t r = read(agent, rd, sizeof rd);
          if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) return 0; /* QEMU is gone */
          if (r > 0 && put(&agent_in, rd, (size_t)r) == 0) from_agent();
        } else if (re & (POLLHUP | POLLERR)) {
          return 0;
        }
      } else if (idx[i] == -2) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) continue;
        int c = 0;
        while (c < MAX_CLIENTS && clients[c].fd >= 0) c++;
        if (c == MAX_CLIENTS) {
          close(fd);
          continue;
        }
        clients[c].fd = fd;
      } else {
        int c = idx[i];
        if (re & POLLIN) {
          ssize_t r = read(clients[c].fd, rd, sizeof rd);
          if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR) || (r > 0 && (put(&clients[c].in, rd, (size_t)r) || from_client(c)))) {
            client_gone(c);
            continue;
          }
        } else if (re & (POLLHUP | POLLERR)) {
          client_gone(c);
          continue;
        }
      }
    }
    if (flush(agent, &agent_out)) return 0;
    for (int c = 0; c < MAX_CLIENTS; c++)
      if (clients[c].fd >= 0 && flush(clients[c].fd, &clients[c].out)) client_gone(c);
  }
}
