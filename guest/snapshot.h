/* Template boots and restored guests (issue 13): see guest/snapshot.c and guest/PROTOCOL.md. */
#ifndef HULL_SNAPSHOT_H
#define HULL_SNAPSHOT_H
#include "spec.h"
#include <stddef.h>

/* The ports a run spec needs (bit mask of 1 << P_x). */
unsigned spec_ports(const struct spec *s);
/* A template boot: opens every port, waits for the clock source to settle, reports T_TEMPLATE on
 * hull.status, then waits (the host saves the VM meanwhile) for the run's spec on hull.run.
 * Returns with *s replaced by the run's spec, the clock set and the RNG reseeded, the ports the
 * run does not use closed. 0, or -1 with msg set. */
int template_wait(struct spec *s, char *msg, size_t msglen);
/* Per-run identity from the run spec: the wall clock and fresh RNG bytes. */
void resume_identity(const struct spec *s);
#endif
