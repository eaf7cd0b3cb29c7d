/* The container's writable layer as a tar stream for the host (hull build --vm). */
#ifndef HULL_LAYER_H
#define HULL_LAYER_H
/* Writes the overlay upper directory `dirfd` to `out` as a tar in OCI layer form (see layer.c).
 * Returns 0 when the whole archive (with its end blocks) was written, -1 otherwise. */
int layer_send(int dirfd, int out);
/* Why the last layer_send failed (a static string with the path and errno). */
extern char layer_error[512];
#endif
