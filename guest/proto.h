/*
 * hull guest protocol, version 1 (see guest/PROTOCOL.md). Shared by every file of the agent.
 * All integers are little-endian (the guest is x86-64, so they are written as-is).
 */
#ifndef HULL_PROTO_H
#define HULL_PROTO_H
#include <stdint.h>
#include <stddef.h>

#define PROTO_VERSION 1
#define FRAME_HEADER 8          /* u8 version, u8 type, u16 channel, u32 length */
#define FRAME_MAX_PAYLOAD 65536 /* anything longer is a protocol error */

/* host -> guest */
#define T_EXEC 0x10      /* payload: spec records; starts a process on `channel` (1..65535) */
#define T_STDIN 0x11     /* payload: bytes for the channel's stdin */
#define T_STDIN_EOF 0x12 /* close the channel's stdin */
#define T_SIGNAL 0x13    /* payload: u32 signal number, to the channel's process */
#define T_RESIZE 0x14    /* payload: u16 rows, u16 cols */
#define T_SHUTDOWN 0x15  /* SIGTERM the main process; the VM powers off when it has exited */
#define T_LAYER 0x16     /* payload: u8 flags (LAYER_FREEZE): send the writable layer now, on `channel` */
#define LAYER_FREEZE 1   /* stop every process while it is written (docker commit's --pause) */
#define T_RESUME 0x17    /* hull.run, to a restored template: payload: the run's spec records */
#define T_REHEARSE 0x18  /* hull.run, to a warm pool's guest before its run: payload: spec records of a rehearsal run */
/* guest -> host */
#define T_READY 0x20     /* status port: main process started; payload: u32 guest pid + kernel release */
#define T_STDOUT 0x21    /* payload: output of the channel's process */
#define T_STDERR 0x22
#define T_EXIT 0x23      /* payload: i32 exit code, u8 flags (EXIT_OOM), then an optional UTF-8 reason */
#define EXIT_OOM 1
#define EXIT_LAYER 2 /* the answer to T_LAYER: the whole writable layer went out before this EXIT */
#define T_ERROR 0x24     /* payload: UTF-8 message; a request was refused */
#define T_LAYER_SENT 0x25 /* status port, after EXIT: the whole writable layer went out on hull.layer (R_LAYER) */
#define T_TEMPLATE 0x26  /* status port, template boot: booted, clock settled, waiting on hull.run: save me now */
#define T_REHEARSED 0x27 /* status port, after T_REHEARSE: payload empty (done, waiting on hull.run again) or why it failed */

/* spec records (a spec file is "HULLSPEC", u32 version, then records; an EXEC payload is records) */
#define SPEC_MAGIC "HULLSPEC"
#define R_ARG 1      /* repeated, in order */
#define R_ENV 2      /* repeated, KEY=VALUE */
#define R_CWD 3
#define R_USER 4     /* name | uid | uid:gid | name:group; empty = root */
#define R_HOSTNAME 5
#define R_TTY 6      /* u8 0|1 */
#define R_STDIN 7    /* u8 0|1: keep stdin open (fed by T_STDIN) */
#define R_READONLY 8 /* u8 0|1: root filesystem read-only */
#define R_TMPFS 9    /* "dest\0options" */
#define R_SHARE 10   /* "tag\0dest\0ro|rw": a 9p share exported by QEMU */
#define R_WINSIZE 11 /* u16 rows, u16 cols */
#define R_MAINPORT 12 /* u8 0|1: the host attached port "hull.main" (foreground run) */
#define R_CLOCK 13    /* u64 host wall clock, ns since the epoch: the guest sets its clock */
#define R_LOGFMT 14   /* u8 0|1: main output goes to hull.stdout as k8s-file log lines (detached) */
#define R_LAYER 15    /* u8 0|1|2: after a zero exit (1) or any exit (2), stream the writable layer as a tar on hull.layer */
#define R_TEMPLATE 16 /* u8 0|1: a template boot (guest/snapshot.c): the run spec comes later on hull.run */
#define R_RANDOM 17   /* 16..512 fresh host bytes: mixed into the RNG and a reseed forced (restored guests) */
#define R_POD 48      /* u8 0|1: pod mode (guest/pod.h): no main process, containers come over hull.ctl */
#define SPEC_MAX_RECORDS 8192

struct frame {
  uint8_t type;
  uint16_t channel;
  uint32_t len;
  uint8_t *data; /* points into the receive buffer; valid until the next read */
};

#endif
