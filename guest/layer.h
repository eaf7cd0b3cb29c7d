/* The container's writable layer as a tar stream for the host (hull build --vm). */
#ifndef HULL_LAYER_H
#define HULL_LAYER_H
#include <stdint.h>
/* Writes the overlay upper directory `dirfd` to `out` as a tar in OCI layer form (see layer.c).
 * Returns 0 when the whole archive (with its end blocks) was written, -1 otherwise. */
int layer_send(int dirfd, int out);
/* Control request LAYER (guest/PROTOCOL.md): the upper directory as STDOUT frames on `port`,
 * channel `ch`, then EXIT (code 0 with EXIT_LAYER, or 1 and the reason). With `freeze`, every
 * other process is stopped (SIGSTOP) while it is written and continued after; without, they
 * run on and a file that vanishes or shrinks meanwhile is skipped or padded. Returns send_frame's result. */
int layer_serve(int dirfd, int port, uint16_t ch, int freeze);
/* Why the last layer_send failed (a static string with the path and errno). */
extern char layer_error[512];
#endif
