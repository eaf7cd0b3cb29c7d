#include "logfmt.h"
#include "ports.h"
#include <stdio.h>
#include <string.h>
#include <time.h>

void log_records(int fd, const char *stream, const char *buf, size_t len) {
  static char out[FRAME_MAX_PAYLOAD + 128];
  struct timespec ts;
  struct tm tm;
  char stamp[64];
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  size_t sl = strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(stamp + sl, sizeof stamp - sl, ".%09ldZ", ts.tv_nsec);
  while (len) {
    const char *nl = memchr(buf, '\n', len);
    size_t n = nl ? (size_t)(nl - buf) : len;
    if (n > FRAME_MAX_PAYLOAD) n = FRAME_MAX_PAYLOAD;
    int full = nl && buf + n == nl;
    int h = snprintf(out, sizeof out, "%s %s %c ", stamp, stream, full ? 'F' : 'P');
    memcpy(out + h, buf, n);
    out[h + n] = '\n';
    write_all(fd, out, h + n + 1);
    buf += n + (full ? 1 : 0);
    len -= n + (full ? 1 : 0);
  }
}
