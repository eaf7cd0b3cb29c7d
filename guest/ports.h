/* The virtio-serial ports the host gives the guest, found by name, and framed I/O on them. */
#ifndef HULL_PORTS_H
#define HULL_PORTS_H
#include "proto.h"
#include <stddef.h>
#include <stdint.h>

enum { P_STATUS, P_STDOUT, P_STDERR, P_CTL, P_MAIN, P_LAYER, P_RUN, NPORTS };

struct port {
  const char *name;
  int fd;        /* -1 when the host did not attach it */
  int connected; /* a host end is open (sockets come and go; files are always connected) */
  int broken;    /* a bad frame arrived: ignore input until the host reconnects */
  size_t rxlen;
  uint8_t rx[FRAME_HEADER + FRAME_MAX_PAYLOAD];
};

extern struct port ports[NPORTS];

/* Waits (up to ~10 s) until every port in `need` (bit mask of 1 << P_x) is announced, opens
 * them all. Control ports get O_ASYNC so that a host connecting raises SIGIO. */
int ports_open(unsigned need, char *msg, size_t msglen);
/* Writes a whole frame; drops it when the port has no host end. Returns 0 or -1. */
int send_frame(int p, uint8_t type, uint16_t channel, const void *data, uint32_t len);
/* Writes all of buf to fd, retrying on EINTR/EAGAIN. */
int write_all(int fd, const void *buf, size_t len);
/* Reads what is available; calls on_frame for each complete frame. Returns 0, or -1 when the
 * host end went away (the caller stops polling until SIGIO). */
int port_read(int p, void (*on_frame)(int p, const struct frame *f));
#endif
