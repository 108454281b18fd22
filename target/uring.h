/* File I/O for the reference target through io_uring, on a libuv loop.
 *
 * The ring signals completions on an eventfd (io_uring_register_eventfd)
 * that a uv_poll_t watches; every wake-up drains the eventfd and then every
 * CQE in the ring, so nothing waits for a second wake-up.  Every step of an
 * operation (openat, read, write, fsync, close) is an io_uring request; no
 * blocking file syscall runs on the loop, except in fl_uring_close (below).
 *
 * Admission: at most `entries` operations are in progress at once (each has
 * at most two requests in flight, and the completion queue has 2 * entries
 * slots, so it never overflows).  Further operations wait in a FIFO inside
 * the ring object and start as others finish; nothing is ever dropped.  A
 * full submission queue is submitted and the request retried.
 *
 * Callbacks: every accepted operation calls its callback exactly once, from
 * the loop's thread, never from inside the call that started it.  Results
 * are 0 (or the byte count, see below) or a negative errno from the failing
 * step (-ENOENT from openat, -EIO from read...).
 *
 * Threads: one loop.  Every function here is called on the loop's thread.
 */
#ifndef FAULTLINE_TARGET_URING_H
#define FAULTLINE_TARGET_URING_H

#include <stddef.h>
#include <uv.h>

#include "resilience/err.h"

/* Default ring depth (submission queue entries; operations in progress). */
#define FL_URING_DEFAULT_ENTRIES 64
/* Default and hard limit of a whole-file read's size. */
#define FL_URING_DEFAULT_MAX_READ (16u << 20)
/* First read's buffer size; doubled while the file has more. */
#define FL_URING_READ_CHUNK (64u << 10)

struct fl_uring;

struct fl_uring_opts {
	unsigned entries; /* 0 = FL_URING_DEFAULT_ENTRIES; rounded up to a power of two, <= 4096 */
};

/* Counters since fl_uring_new. */
struct fl_uring_stats {
	unsigned long long reads;   /* read operations finished (success or failure) */
	unsigned long long writes;  /* write operations finished */
	unsigned long long failed;  /* operations finished with a negative result */
	unsigned long long queued;  /* operations that waited in the FIFO for admission */
	unsigned long long wakeups; /* eventfd wake-ups */
	unsigned long long cqes;    /* completions reaped */
	unsigned long long sq_full; /* times the submission queue was full and submitted */
	unsigned in_progress;	    /* operations admitted and not finished */
	unsigned waiting;	    /* operations in the FIFO */
};

/* A whole-file read finished.  res is the number of bytes read (>= 0) or a
 * negative errno (-ENOENT, -EACCES, -EISDIR, -EFBIG over max_bytes,
 * -ENOMEM, -ECANCELED when the ring was closed first).  data is borrowed:
 * valid only during the callback, NUL-terminated after len bytes for
 * convenience (NULL when res < 0).  The file descriptor is already closed. */
typedef void (*fl_uring_read_cb)(int res, const char *data, size_t len, void *ctx);

/* A write + fsync finished: res is 0 or a negative errno (-ECANCELED when
 * the ring was closed first).  The file descriptor is already closed; on
 * failure the file may hold part of the data. */
typedef void (*fl_uring_write_cb)(int res, void *ctx);

/* Sets up a ring with opts->entries entries (opts may be NULL), registers
 * an eventfd and starts watching it on loop.  Returns 0 and sets *out;
 * otherwise a negative errno and a message in err, and *out is NULL:
 *  - io_uring_queue_init's error when the kernel refuses a ring (-EPERM
 *    under a seccomp filter or kernel.io_uring_disabled, -ENOSYS on a kernel
 *    without io_uring, -ENOMEM when locked memory is short), with a message
 *    starting "io_uring is unavailable:" and saying why;
 *  - -ENOSYS when the kernel lacks an opcode used here (openat, read, write,
 *    fsync, close: Linux >= 5.6);
 *  - -EINVAL for entries > 4096.
 * The ring is freed by fl_uring_close. */
int fl_uring_new(struct fl_uring **out, uv_loop_t *loop, const struct fl_uring_opts *opts,
		 struct rs_err *err) __attribute__((warn_unused_result));

/* Reads the whole file at path (openat O_RDONLY, reads until end of file,
 * close).  path is copied.  max_bytes 0 means FL_URING_DEFAULT_MAX_READ; a
 * larger file fails with -EFBIG.  Returns 0 when the operation was accepted
 * (cb will be called once), or -EINVAL (NULL argument, max_bytes over the
 * default limit), -ENOMEM, -ESHUTDOWN after fl_uring_close; cb is then never
 * called. */
int fl_uring_read_file(struct fl_uring *r, const char *path, size_t max_bytes, fl_uring_read_cb cb,
		       void *ctx) __attribute__((warn_unused_result));

/* Creates or truncates the file at path (mode 0644), writes len bytes of
 * data and fsyncs it (the write and the fsync are linked requests,
 * IOSQE_IO_LINK; a short write is continued), then closes it.  path is
 * copied; data is borrowed and must stay valid and unchanged until cb is
 * called.  Returns like fl_uring_read_file. */
int fl_uring_write_file(struct fl_uring *r, const char *path, const void *data, size_t len,
			fl_uring_write_cb cb, void *ctx) __attribute__((warn_unused_result));

/* The counters; borrowed, valid until fl_uring_close. */
const struct fl_uring_stats *fl_uring_stats(const struct fl_uring *r);

/* Closes the ring: cancels the requests in flight and waits for the kernel
 * to give their buffers back (this blocks the loop until then, at most as
 * long as the slowest request in flight), calls the callback of every
 * unfinished operation with -ECANCELED (from inside this call), then stops
 * the poll handle.  The memory is freed once the handle has closed, after
 * which close_cb(ctx) runs (close_cb may be NULL); run the loop until then.
 * Accepts NULL; a second call does nothing. */
void fl_uring_close(struct fl_uring *r, void (*close_cb)(void *ctx), void *ctx);

#endif
