/* Output of a detached main process as k8s-file log lines ("<RFC 3339 time> <stream> <F|P> <text>"),
 * the format hull's engine reads for `logs` (and conmon writes for containers). */
#ifndef HULL_LOGFMT_H
#define HULL_LOGFMT_H
#include <stddef.h>
/* Writes buf as log records to fd: one F record per complete line, a P record for a trailing
 * partial line. */
void log_records(int fd, const char *stream, const char *buf, size_t len);
#endif
