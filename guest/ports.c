/* Port discovery through sysfs (/sys/class/virtio-ports/vportNpM/name) and frame I/O. */
#include "ports.h"
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct port ports[NPORTS]; /* zeroed .bss: the receive buffers take no room in the binary */
static const char *const names[NPORTS] = {
  [P_STATUS] = "hull.status", [P_STDOUT] = "hull.stdout", [P_STDERR] = "hull.stderr",
  [P_CTL] = "hull.ctl", [P_MAIN] = "hull.main", [P_LAYER] = "hull.layer", [P_RUN] = "hull.run",
};

/* One pass over sysfs: opens each wanted port whose name has arrived. */
static void scan(unsigned need) {
  DIR *d = opendir("/sys/class/virtio-ports");
  struct dirent *e;
  if (!d) return;
  while ((e = readdir(d))) {
    char path[512], name[64] = "";
    if (e->d_name[0] == '.') continue;
    snprintf(path, sizeof path, "/sys/class/virtio-ports/%s/name", e->d_name);
    FILE *f = fopen(path, "re");
    if (!f) continue;
    if (!fgets(name, sizeof name, f)) name[0] = 0;
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    for (int p = 0; p < NPORTS; p++) {
      if (!(need & (1u << p)) || ports[p].fd >= 0 || strcmp(name, ports[p].name)) continue;
      snprintf(path, sizeof path, "/dev/%s", e->d_name);
      int fd = open(path, (p == P_STDOUT || p == P_STDERR || p == P_STATUS || p == P_LAYER ? O_WRONLY : O_RDWR) | O_CLOEXEC);
      if (fd < 0) continue; /* the node may lag behind the name: next pass */
      if (p == P_CTL || p == P_MAIN) {
        fcntl(fd, F_SETOWN, getpid());
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC);
      }
      ports[p].fd = fd;
      ports[p].connected = 1;
    }
  }
  closedir(d);
}

int ports_open(unsigned need, char *msg, size_t msglen) {
  struct timespec ms = {0, 1000000};
  for (int p = 0; p < NPORTS; p++) {
    ports[p].name = names[p];
    ports[p].fd = -1;
  }
  for (int i = 0; i < 10000; i++) {
    scan(need);
    unsigned missing = 0;
    for (int p = 0; p < NPORTS; p++)
      if ((need & (1u << p)) && ports[p].fd < 0) missing |= 1u << p;
    if (!missing) return 0;
    nanosleep(&ms, NULL);
  }
  snprintf(msg, msglen, "virtio-serial ports did not appear");
  return -1;
}

int write_all(int fd, const void *buf, size_t len) {
  const uint8_t *b = buf;
  while (len) {
    ssize_t n = write(fd, b, len);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
      struct pollfd pf = {.fd = fd, .events = POLLOUT};
      poll(&pf, 1, 100);
      continue;
    }
    if (n <= 0) return -1;
    b += n;
    len -= n;
  }
  return 0;
}

int send_frame(int p, uint8_t type, uint16_t channel, const void *data, uint32_t len) {
  static uint8_t buf[FRAME_HEADER + FRAME_MAX_PAYLOAD];
  if (ports[p].fd < 0 || !ports[p].connected) return -1;
  if (len > FRAME_MAX_PAYLOAD) len = FRAME_MAX_PAYLOAD;
  buf[0] = PROTO_VERSION;
  buf[1] = type;
  memcpy(buf + 2, &channel, 2);
  memcpy(buf + 4, &len, 4);
  if (len) memcpy(buf + FRAME_HEADER, data, len);
  return write_all(ports[p].fd, buf, FRAME_HEADER + len);
}

int port_read(int p, void (*on_frame)(int p, const struct frame *f)) {
  struct port *pt = &ports[p];
  ssize_t n = read(pt->fd, pt->rx + pt->rxlen, sizeof pt->rx - pt->rxlen);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return 0;
  if (n <= 0) { /* no host end (virtio_console reads 0 then) */
    pt->connected = 0;
    pt->rxlen = 0;
    pt->broken = 0;
    return -1;
  }
  if (pt->broken) return 0;
  pt->rxlen += n;
  size_t off = 0;
  while (pt->rxlen - off >= FRAME_HEADER) {
    uint8_t *h = pt->rx + off;
    struct frame f = {.type = h[1]};
    memcpy(&f.channel, h + 2, 2);
    memcpy(&f.len, h + 4, 4);
    if (h[0] != PROTO_VERSION || f.len > FRAME_MAX_PAYLOAD) {
      static const char m[] = "bad frame: wrong version or oversized; input ignored until reconnect";
      send_frame(p, T_ERROR, 0, m, sizeof m - 1);
      pt->broken = 1;
      pt->rxlen = 0;
      return 0;
    }
    if (pt->rxlen - off < FRAME_HEADER + f.len) break;
    f.data = h + FRAME_HEADER;
    on_frame(p, &f);
    off += FRAME_HEADER + f.len;
  }
  memmove(pt->rx, pt->rx + off, pt->rxlen - off);
  pt->rxlen -= off;
  return 0;
}
