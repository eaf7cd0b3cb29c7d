/* The guest's network (guest/net.c): records of the run spec, interface set-up, /etc files. */
#ifndef HULL_NET_H
#define HULL_NET_H
#include <stddef.h>
#include <stdint.h>

/* spec records 32-47 belong to the network (guest/PROTOCOL.md) */
#define R_NETIF 32  /* "name\0mac\0a.b.c.d/prefix\0mtu": one NIC */
#define R_ROUTE 33  /* "a.b.c.d/prefix\0gateway": a route (0.0.0.0/0: the default) */
#define R_HOSTS 34  /* the whole /etc/hosts */
#define R_RESOLV 35 /* the whole /etc/resolv.conf */
#define NET_MAX_IFS 8
#define NET_MAX_ROUTES 8

struct netif {
  char name[16];
  uint8_t mac[6];
  uint32_t addr; /* network byte order */
  int prefix, mtu;
};

struct netroute {
  uint32_t dest, gw; /* network byte order */
  int prefix;
};

struct netspec {
  struct netif ifs[NET_MAX_IFS];
  int nifs;
  struct netroute routes[NET_MAX_ROUTES];
  int nroutes;
  char *hosts, *resolv;
};

/* A spec record: 1 when it was a network record (0 when not), -1 with *err when malformed. */
int net_record(struct netspec *n, uint16_t tag, const uint8_t *p, uint32_t len, const char **err);
void net_free(struct netspec *n);
/* /etc/hosts and /etc/resolv.conf under root (the container root before it becomes /). */
void net_write_etc(const char *root, const struct netspec *n);
/* Loopback up; each NIC (found by MAC, else by name) gets its MAC, MTU, address, up; then the
 * routes. Safe to call again after a snapshot restore with new values. */
int net_up(const struct netspec *n, char *msg, size_t msglen);
/* Loopback up (a template does it before the snapshot: it holds nothing of a run). */
int net_loopback(void);
#endif
