/* The guest's filesystems: kernel pseudo filesystems, then the container root. */
#ifndef HULL_ROOTFS_H
#define HULL_ROOTFS_H
#include "spec.h"
#include <stddef.h>

/* /dev, /proc, /sys of the initramfs (where the agent finds its ports). */
int mount_early(char *msg, size_t msglen);
/* erofs image on /dev/vda (read-only) + overlay on tmpfs, /proc /sys /dev inside, the spec's
 * tmpfs and shared mounts, then the overlay becomes / (moved over the initramfs) and is the root
 * of the agent and of everything it starts. */
int enter_root(const struct spec *s, char *msg, size_t msglen);
/* A template's run-independent mounts, made before the snapshot; enter_root then moves them
 * into the root instead of mounting its own. restage_root: the same afresh, in a new mount
 * namespace (a pool's rehearsal). */
int stage_root(char *msg, size_t msglen);
int restage_root(char *msg, size_t msglen);
/* A tmpfs <root>/dev with the nodes docker gives a container, devpts and shm (pod mode too). */
int make_dev(const char *root, char *msg, size_t msglen);
/* A directory fd of the overlay's upper dir, opened before the root moved (-1 before enter_root). */
extern int rootfs_upper_fd;
#endif
