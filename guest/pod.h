/*
 * Pod mode (guest/PROTOCOL.md, "Pod mode"): the VM of one Kubernetes pod or containerd task
 * group. The agent starts no process at boot; the host (containerd-shim-hull-v2) runs
 * containers and exec sessions over hull.ctl, each container rooted in a directory of the
 * virtio-fs share the host exports under the tag "hullpod".
 */
#ifndef HULL_POD_H
#define HULL_POD_H
#include "spec.h"

/* spec records 48-63 belong to pod mode; those of a RUN payload (besides ARG, ENV, CWD, USER, TTY, STDIN, WINSIZE, READONLY, TMPFS) */
#define R_ROOT 49      /* the container's root: a path relative to the share (no "..", not absolute) */
#define R_BIND 50      /* "src\0dest\0ro|rw": src relative to the share, bind-mounted at dest */
#define R_CONTAINER 51 /* u16: the channel of the container an EXEC runs in */
#define R_PIDNS 52     /* u16: RUN joins the pid namespace of this container (a pod sharing its pids) */

/* host -> guest */
#define T_RUN 0x30     /* payload: records; starts a container on `channel` */
#define T_PIDS 0x31    /* on a container's channel: asks for the pids of its processes */
#define T_REMOVE 0x32  /* on an exited container's channel: unmounts its root */
/* guest -> host */
#define T_STARTED 0x38 /* payload: u32 guest pid; a RUN or EXEC started */
#define T_PIDLIST 0x39 /* payload: u32 pids */
#define T_REMOVED 0x3A /* the container's mounts are gone */
#define T_OOM 0x3B     /* the guest kernel's OOM killer killed a process of this container */

#define POD_SHARE_TAG "hullpod"

/* Runs the pod: never returns (the VM powers off when the host says SHUTDOWN or goes away). */
void pod_main(const struct spec *s, int sfd);
#endif
