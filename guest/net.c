/*
 * The guest's network: what the host's network stack prepared (src/network/), applied with
 * plain ioctls on an AF_INET socket (no iproute2 in the guest). A NIC is found by the MAC QEMU
 * gave it, else by name (a NIC restored from a snapshot still has the template's MAC), and gets
 * the veth's MAC, MTU and address; then the routes. /etc/hosts and /etc/resolv.conf are the
 * host's text, written into the container root before it becomes /.
 */
#define _GNU_SOURCE
#include "net.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int parse_mac(const char *s, uint8_t out[6]) {
  unsigned b[6];
  if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6 || strlen(s) != 17) return -1;
  for (int i = 0; i < 6; i++) out[i] = (uint8_t)b[i];
  return 0;
}

static int parse_cidr(const char *s, uint32_t *addr, int *prefix) {
  char ip[16];
  const char *slash = strchr(s, '/');
  if (!slash || slash - s >= (long)sizeof ip) return -1;
  memcpy(ip, s, slash - s);
  ip[slash - s] = 0;
  char *end;
  long p = strtol(slash + 1, &end, 10);
  if (*end || p < 0 || p > 32 || inet_pton(AF_INET, ip, addr) != 1) return -1;
  *prefix = (int)p;
  return 0;
}

/* "a\0b\0c..." -> up to `max` fields; the count, or -1 when a field is not terminated. */
static int fields(const uint8_t *p, uint32_t len, const char **f, int max) {
  int n = 0;
  uint32_t start = 0;
  for (uint32_t i = 0; i <= len && n < max; i++) {
    if (i == len || p[i] == 0) {
      f[n++] = (const char *)p + start;
      start = i + 1;
    }
  }
  return n;
}

int net_record(struct netspec *n, uint16_t tag, const uint8_t *p, uint32_t len, const char **err) {
  const char *f[4];
  char buf[128];
  if (tag != R_NETIF && tag != R_ROUTE && tag != R_HOSTS && tag != R_RESOLV) return 0;
  if (tag == R_HOSTS || tag == R_RESOLV) {
    char **dst = tag == R_HOSTS ? &n->hosts : &n->resolv;
    char *s = malloc(len + 1);
    if (!s) { *err = "out of memory"; return -1; }
    memcpy(s, p, len);
    s[len] = 0;
    free(*dst);
    *dst = s;
    return 1;
  }
  /* the short records are copied so every field is NUL-terminated inside our buffer */
  if (len >= sizeof buf) { *err = "network record too long"; return -1; }
  memcpy(buf, p, len);
  buf[len] = 0;
  if (tag == R_NETIF) {
    struct netif *i = &n->ifs[n->nifs];
    if (n->nifs == NET_MAX_IFS || fields((uint8_t *)buf, len, f, 4) != 4 || strlen(f[0]) == 0 || strlen(f[0]) >= sizeof i->name ||
        parse_mac(f[1], i->mac) || parse_cidr(f[2], &i->addr, &i->prefix) || (i->mtu = atoi(f[3])) < 68 || i->mtu > 65535) {
      *err = "bad network interface record";
      return -1;
    }
    snprintf(i->name, sizeof i->name, "%s", f[0]);
    n->nifs++;
    return 1;
  }
  struct netroute *r = &n->routes[n->nroutes];
  if (n->nroutes == NET_MAX_ROUTES || fields((uint8_t *)buf, len, f, 2) != 2 || parse_cidr(f[0], &r->dest, &r->prefix) || inet_pton(AF_INET, f[1], &r->gw) != 1) {
    *err = "bad route record";
    return -1;
  }
  n->nroutes++;
  return 1;
}

void net_free(struct netspec *n) {
  free(n->hosts);
  free(n->resolv);
  memset(n, 0, sizeof *n);
}

static void write_file(const char *root, const char *name, const char *text) {
  char p[4096];
  snprintf(p, sizeof p, "%s/etc/%s", root, name);
  int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0) return;
  size_t len = strlen(text), off = 0;
  while (off < len) {
    ssize_t w = write(fd, text + off, len - off);
    if (w <= 0) break;
    off += (size_t)w;
  }
  close(fd);
}

void net_write_etc(const char *root, const struct netspec *n) {
  char p[4096];
  struct stat st;
  snprintf(p, sizeof p, "%s/etc", root);
  if (stat(p, &st) || !S_ISDIR(st.st_mode)) return;
  if (n->hosts) write_file(root, "hosts", n->hosts);
  if (n->resolv) write_file(root, "resolv.conf", n->resolv);
}

static int fail(char *msg, size_t msglen, const char *what, const char *ifname) {
  snprintf(msg, msglen, "network: %s %s: %s", what, ifname, strerror(errno));
  return -1;
}

static int set_flags(int s, const char *name, short on) {
  struct ifreq r;
  memset(&r, 0, sizeof r);
  snprintf(r.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(s, SIOCGIFFLAGS, &r)) return -1;
  short want = (short)((r.ifr_flags & ~IFF_UP) | on);
  if (want == r.ifr_flags) return 0; /* as it is already (a template's loopback) */
  r.ifr_flags = want;
  return ioctl(s, SIOCSIFFLAGS, &r);
}

int net_loopback(void) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return -1;
  int rc = set_flags(s, "lo", IFF_UP);
  close(s);
  return rc;
}

/* The interface with this MAC, else the one named `name`; its name is written to `out`. */
static int find_if(int s, const struct netif *i, char out[IFNAMSIZ]) {
  struct if_nameindex *all = if_nameindex();
  int found = -1;
  for (struct if_nameindex *x = all; x && x->if_index && found < 0; x++) {
    struct ifreq r;
    memset(&r, 0, sizeof r);
    snprintf(r.ifr_name, IFNAMSIZ, "%s", x->if_name);
    if (!ioctl(s, SIOCGIFHWADDR, &r) && r.ifr_hwaddr.sa_family == ARPHRD_ETHER && !memcmp(r.ifr_hwaddr.sa_data, i->mac, 6)) {
      snprintf(out, IFNAMSIZ, "%s", x->if_name);
      found = 0;
    }
  }
  if (all) if_freenameindex(all);
  if (found < 0 && if_nametoindex(i->name)) {
    snprintf(out, IFNAMSIZ, "%s", i->name);
    found = 0;
  }
  return found;
}

static void put_addr(struct sockaddr *sa, uint32_t addr) {
  struct sockaddr_in *a = (struct sockaddr_in *)sa;
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = addr;
}

int net_up(const struct netspec *n, char *msg, size_t msglen) {
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) return fail(msg, msglen, "socket", "");
  set_flags(s, "lo", IFF_UP); /* as in a container: loopback works even with --network none */
  for (int k = 0; k < n->nifs; k++) {
    const struct netif *i = &n->ifs[k];
    char name[IFNAMSIZ];
    struct ifreq r;
    if (find_if(s, i, name)) { errno = ENODEV; close(s); return fail(msg, msglen, "no NIC for", i->name); }
    memset(&r, 0, sizeof r);
    snprintf(r.ifr_name, IFNAMSIZ, "%s", name);
    if (!ioctl(s, SIOCGIFHWADDR, &r) && memcmp(r.ifr_hwaddr.sa_data, i->mac, 6)) {
      set_flags(s, name, 0); /* a MAC changes while the link is down */
      r.ifr_hwaddr.sa_family = ARPHRD_ETHER;
      memcpy(r.ifr_hwaddr.sa_data, i->mac, 6);
      if (ioctl(s, SIOCSIFHWADDR, &r)) { close(s); return fail(msg, msglen, "set MAC of", name); }
    }
    memset(&r, 0, sizeof r);
    snprintf(r.ifr_name, IFNAMSIZ, "%s", name);
    r.ifr_mtu = i->mtu;
    if (ioctl(s, SIOCSIFMTU, &r)) { close(s); return fail(msg, msglen, "set MTU of", name); }
    put_addr(&r.ifr_addr, i->addr);
    if (ioctl(s, SIOCSIFADDR, &r)) { close(s); return fail(msg, msglen, "set address of", name); }
    put_addr(&r.ifr_netmask, i->prefix ? htonl(0xffffffffu << (32 - i->prefix)) : 0);
    if (ioctl(s, SIOCSIFNETMASK, &r)) { close(s); return fail(msg, msglen, "set netmask of", name); }
    if (set_flags(s, name, IFF_UP)) { close(s); return fail(msg, msglen, "bring up", name); }
  }
  for (int k = 0; k < n->nroutes; k++) {
    const struct netroute *x = &n->routes[k];
    struct rtentry rt;
    memset(&rt, 0, sizeof rt);
    put_addr(&rt.rt_dst, x->dest);
    put_addr(&rt.rt_gateway, x->gw);
    put_addr(&rt.rt_genmask, x->prefix ? htonl(0xffffffffu << (32 - x->prefix)) : 0);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(s, SIOCADDRT, &rt) && errno != EEXIST) { close(s); return fail(msg, msglen, "add route via", inet_ntoa(*(struct in_addr *)&x->gw)); }
  }
  close(s);
  return 0;
}
