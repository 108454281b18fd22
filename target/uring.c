#include "target/uring.h"

#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

enum op_kind { OP_READ, OP_WRITE };
enum op_step { STEP_NONE, STEP_OPEN, STEP_READ, STEP_WRITE, STEP_CLOSE };

/* user_data = op pointer | tag; ops are malloc'ed, so the low 3 bits are free. */
#define TAG_MAIN  0u
#define TAG_FSYNC 1u
#define TAG_MASK  7u
#define UD_CANCEL 0u /* the cancel-all request of fl_uring_close (no op) */

struct op {
	struct fl_uring *r;
	struct op *prev, *next; /* in r->active or r->waiting */
	enum op_kind kind;
	enum op_step step;
	int fd;		   /* -1 when not open */
	int result;	   /* the result to report once the file is closed */
	unsigned cqes;	   /* completions still expected for the current step */
	int step_res;	   /* result of the main request of the current step */
	int fsync_res;	   /* result of the linked fsync (write step) */
	char *buf;	   /* read: file contents, cap + 1 bytes (NUL) */
	size_t len;	   /* read: bytes so far; write: bytes written so far */
	size_t cap;	   /* read: buffer capacity */
	size_t max;	   /* read: max_bytes */
	const char *wdata; /* write: borrowed until the callback */
	size_t wlen;
	fl_uring_read_cb read_cb;
	fl_uring_write_cb write_cb;
	void *ctx;
	char path[]; /* NUL-terminated copy */
};

struct oplist {
	struct op *head, *tail;
};

struct fl_uring {
	uv_loop_t *loop;
	struct io_uring ring;
	int efd;
	uv_poll_t poll;
	unsigned max_active;   /* operations in progress at most (= SQ entries) */
	unsigned sqe_inflight; /* requests prepared or submitted, CQE not reaped */
	unsigned unsubmitted;  /* requests prepared since the last submit */
	int in_drain;
	int closing;
	struct oplist active;
	struct oplist waiting;
	struct fl_uring_stats stats;
	void (*close_cb)(void *ctx);
	void *close_ctx;
};

static void list_push(struct oplist *l, struct op *o)
{
	o->next = NULL;
	o->prev = l->tail;
	if (l->tail)
		l->tail->next = o;
	else
		l->head = o;
	l->tail = o;
}

static void list_del(struct oplist *l, struct op *o)
{
	if (o->prev)
		o->prev->next = o->next;
	else
		l->head = o->next;
	if (o->next)
		o->next->prev = o->prev;
	else
		l->tail = o->prev;
	o->prev = o->next = NULL;
}

static int submit(struct fl_uring *r)
{
	int rc;

	if (!r->unsubmitted)
		return 0;
	do
		rc = io_uring_submit(&r->ring);
	while (rc == -EINTR);
	if (rc < 0)
		return rc;
	r->unsubmitted -= (unsigned)rc < r->unsubmitted ? (unsigned)rc : r->unsubmitted;
	return 0;
}

/* Returns n free SQEs' worth of room, submitting what is queued when the
 * submission queue is full; 0 or the submit error. */
static int make_room(struct fl_uring *r, unsigned n)
{
	int rc;

	if (io_uring_sq_space_left(&r->ring) >= n)
		return 0;
	r->stats.sq_full++;
	rc = submit(r);
	if (rc < 0)
		return rc;
	return io_uring_sq_space_left(&r->ring) >= n ? 0 : -EBUSY;
}

static struct io_uring_sqe *sqe_for(struct fl_uring *r, struct op *o, unsigned tag)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&r->ring);

	/* make_room() reserved the space, so this cannot fail. */
	io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)o | tag);
	r->sqe_inflight++;
	r->unsubmitted++;
	return sqe;
}

/* Prepares the requests of o's current step.  0, or a negative errno when
 * no SQE could be had (the step did not start). */
static int issue(struct fl_uring *r, struct op *o)
{
	struct io_uring_sqe *sqe;
	unsigned n = o->step == STEP_WRITE ? 2 : 1;
	int rc = make_room(r, n);

	if (rc < 0)
		return rc;
	o->cqes = n;
	o->step_res = 0;
	o->fsync_res = 0;
	sqe = sqe_for(r, o, TAG_MAIN);
	switch (o->step) {
	case STEP_OPEN:
		if (o->kind == OP_READ)
			io_uring_prep_openat(sqe, AT_FDCWD, o->path, O_RDONLY | O_CLOEXEC, 0);
		else
			io_uring_prep_openat(sqe, AT_FDCWD, o->path,
					     O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		break;
	case STEP_READ:
		io_uring_prep_read(sqe, o->fd, o->buf + o->len, (unsigned)(o->cap - o->len),
				   o->len);
		break;
	case STEP_WRITE:
		io_uring_prep_write(sqe, o->fd, o->wdata + o->len, (unsigned)(o->wlen - o->len),
				    o->len);
		sqe->flags |= IOSQE_IO_LINK;
		io_uring_prep_fsync(sqe_for(r, o, TAG_FSYNC), o->fd, 0);
		break;
	case STEP_CLOSE:
		io_uring_prep_close(sqe, o->fd);
		break;
	case STEP_NONE:
		break;
	}
	return 0;
}

static void finish(struct fl_uring *r, struct op *o);

/* Starts o's next step, or finishes it when the step cannot start (the
 * file descriptor, if open, is then closed synchronously: a failure path). */
static void advance(struct fl_uring *r, struct op *o, enum op_step step)
{
	int rc;

	o->step = step;
	rc = issue(r, o);
	if (rc == 0)
		return;
	if (!o->result)
		o->result = rc;
	if (o->fd >= 0) {
		close(o->fd);
		o->fd = -1;
	}
	finish(r, o);
}

/* Ends o: the step after the last request is to close the file. */
static void fail_or_close(struct fl_uring *r, struct op *o, int res)
{
	if (res < 0 && !o->result)
		o->result = res;
	if (o->fd >= 0)
		advance(r, o, STEP_CLOSE);
	else
		finish(r, o);
}

static void admit(struct fl_uring *r, struct op *o)
{
	list_push(&r->active, o);
	r->stats.in_progress++;
	advance(r, o, STEP_OPEN);
}

static void admit_waiting(struct fl_uring *r)
{
	while (!r->closing && r->waiting.head && r->stats.in_progress < r->max_active) {
		struct op *o = r->waiting.head;

		list_del(&r->waiting, o);
		r->stats.waiting--;
		admit(r, o);
	}
}

static void free_op(struct op *o)
{
	free(o->buf);
	free(o);
}

/* Calls o's callback and frees it; o is in r->active. */
static void finish(struct fl_uring *r, struct op *o)
{
	list_del(&r->active, o);
	r->stats.in_progress--;
	if (o->result < 0)
		r->stats.failed++;
	if (o->kind == OP_READ) {
		r->stats.reads++;
		if (o->result < 0) {
			o->read_cb(o->result, NULL, 0, o->ctx);
		} else {
			o->buf[o->len] = '\0';
			o->read_cb((int)o->len, o->buf, o->len, o->ctx);
		}
	} else {
		r->stats.writes++;
		o->write_cb(o->result, o->ctx);
	}
	free_op(o);
	admit_waiting(r);
}

static int grow(struct op *o)
{
	size_t cap = o->cap * 2;
	char *p;

	if (cap > o->max + 1)
		cap = o->max + 1;
	p = realloc(o->buf, cap + 1);
	if (!p)
		return -ENOMEM;
	o->buf = p;
	o->cap = cap;
	return 0;
}

/* Every completion of o's current step has arrived: decide the next step. */
static void step_done(struct fl_uring *r, struct op *o)
{
	int res = o->step_res;

	switch (o->step) {
	case STEP_OPEN:
		if (res < 0) {
			fail_or_close(r, o, res);
			return;
		}
		if (o->kind == OP_READ) {
			o->cap =
			    FL_URING_READ_CHUNK < o->max + 1 ? FL_URING_READ_CHUNK : o->max + 1;
			o->buf = malloc(o->cap + 1);
			if (!o->buf) {
				fail_or_close(r, o, -ENOMEM);
				return;
			}
			advance(r, o, STEP_READ);
		} else {
			advance(r, o, STEP_WRITE);
		}
		return;
	case STEP_READ:
		if (res <= 0) {
			fail_or_close(r, o, res);
			return;
		}
		o->len += (size_t)res;
		if (o->len > o->max) {
			fail_or_close(r, o, -EFBIG);
			return;
		}
		if (o->len == o->cap) {
			int rc = grow(o);

			if (rc < 0) {
				fail_or_close(r, o, rc);
				return;
			}
		}
		advance(r, o, STEP_READ);
		return;
	case STEP_WRITE:
		if (res < 0) {
			fail_or_close(r, o, res);
			return;
		}
		o->len += (size_t)res;
		if (o->len < o->wlen) {
			/* A short write severs the link (the fsync reads -ECANCELED);
			 * write the rest, with its own fsync.  No progress at all is
			 * an I/O error rather than a loop. */
			if (res == 0) {
				fail_or_close(r, o, -EIO);
				return;
			}
			advance(r, o, STEP_WRITE);
			return;
		}
		fail_or_close(r, o, o->fsync_res < 0 ? o->fsync_res : 0);
		return;
	case STEP_CLOSE:
		/* A close error after a successful write means the data may be
		 * lost (NFS and friends report it there); after a read it does not
		 * matter. */
		if (res < 0 && o->kind == OP_WRITE && !o->result)
			o->result = res;
		finish(r, o);
		return;
	case STEP_NONE:
		break;
	}
}

static void on_cqe(struct fl_uring *r, uint64_t ud, int res)
{
	struct op *o = (struct op *)(uintptr_t)(ud & ~(uint64_t)TAG_MASK);

	r->sqe_inflight--;
	r->stats.cqes++;
	if (!o)
		return; /* the cancel request */
	if ((ud & TAG_MASK) == TAG_FSYNC) {
		o->fsync_res = res;
	} else {
		o->step_res = res;
		/* While closing no step follows, but the descriptor must be known
		 * to be closed by fl_uring_close. */
		if (o->step == STEP_OPEN && res >= 0)
			o->fd = res;
		else if (o->step == STEP_CLOSE)
			o->fd = -1;
	}
	if (--o->cqes == 0 && !r->closing)
		step_done(r, o);
}

static void drain(struct fl_uring *r)
{
	struct io_uring_cqe *cqe;
	uint64_t v;

	/* Read the eventfd first: a CQE posted after this read signals again. */
	while (read(r->efd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	r->in_drain = 1;
	while (io_uring_peek_cqe(&r->ring, &cqe) == 0) {
		uint64_t ud = io_uring_cqe_get_data64(cqe);
		int res = cqe->res;

		io_uring_cqe_seen(&r->ring, cqe);
		on_cqe(r, ud, res);
		if (r->closing)
			return; /* a callback closed the ring: it is gone */
	}
	r->in_drain = 0;
	(void)submit(r);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct fl_uring *r = h->data;

	(void)status;
	(void)events;
	r->stats.wakeups++;
	drain(r);
}

int fl_uring_new(struct fl_uring **out, uv_loop_t *loop, const struct fl_uring_opts *opts,
		 struct rs_err *err)
{
	static const int ops[] = { IORING_OP_OPENAT, IORING_OP_READ, IORING_OP_WRITE,
				   IORING_OP_FSYNC, IORING_OP_CLOSE };
	static const char *const names[] = { "openat", "read", "write", "fsync", "close" };
	struct io_uring_params p;
	struct io_uring_probe *probe = NULL;
	struct fl_uring *r;
	unsigned entries = opts && opts->entries ? opts->entries : FL_URING_DEFAULT_ENTRIES;
	int rc;

	*out = NULL;
	if (entries > 4096)
		return rs__einval(err, "uring: entries must be <= 4096, got %u", entries);
	r = calloc(1, sizeof(*r));
	if (!r)
		return rs__enomem(err, "uring");
	r->efd = -1;
	r->loop = loop;
	memset(&p, 0, sizeof(p));
	p.flags = IORING_SETUP_CQSIZE;
	p.cq_entries = 2 * entries;
	rc = io_uring_queue_init_params(entries, &r->ring, &p);
	if (rc < 0) {
		const char *why = rc == -EPERM ? "the kernel or a seccomp filter forbids it "
						 "(sysctl kernel.io_uring_disabled, "
						 "container profile)"
				  : rc == -ENOSYS
				      ? "this kernel has no io_uring (Linux >= 5.6 needed)"
				  : rc == -ENOMEM ? "not enough locked memory (ulimit -l)"
				  : rc == -EMFILE ? "too many open files"
						  : "the kernel refused the ring";

		rs__err_set(err, "io_uring is unavailable: io_uring_setup with %u entries: %s (%s)",
			    entries, strerror(-rc), why);
		free(r);
		return rc;
	}
	r->max_active = p.sq_entries;
	if (!(p.features & IORING_FEAT_NODROP)) {
		rc = -ENOSYS;
		rs__err_set(err, "io_uring is unavailable: the kernel lacks IORING_FEAT_NODROP "
				 "(Linux >= 5.5 needed)");
		goto fail_ring;
	}
	probe = io_uring_get_probe_ring(&r->ring);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		if (!probe || !io_uring_opcode_supported(probe, ops[i])) {
			rc = -ENOSYS;
			rs__err_set(err,
				    "io_uring is unavailable: the kernel lacks the %s opcode "
				    "(Linux >= 5.6 needed)",
				    names[i]);
			goto fail_probe;
		}
	}
	io_uring_free_probe(probe);
	probe = NULL;
	r->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (r->efd < 0) {
		rc = -errno;
		rs__err_set(err, "uring: eventfd: %s", strerror(-rc));
		goto fail_ring;
	}
	rc = io_uring_register_eventfd(&r->ring, r->efd);
	if (rc < 0) {
		rs__err_set(err, "uring: io_uring_register_eventfd: %s", strerror(-rc));
		goto fail_efd;
	}
	rc = uv_poll_init(loop, &r->poll, r->efd);
	if (rc < 0) {
		rs__err_set(err, "uring: uv_poll_init on the eventfd: %s", uv_strerror(rc));
		goto fail_efd;
	}
	r->poll.data = r;
	rc = uv_poll_start(&r->poll, UV_READABLE, on_poll);
	if (rc < 0) {
		/* The handle exists now: it must be closed through the loop. */
		rs__err_set(err, "uring: uv_poll_start on the eventfd: %s", uv_strerror(rc));
		r->closing = 1;
		io_uring_queue_exit(&r->ring);
		fl_uring_close(r, NULL, NULL);
		return rc;
	}
	*out = r;
	return 0;
fail_probe:
	io_uring_free_probe(probe);
	goto fail_ring;
fail_efd:
	close(r->efd);
fail_ring:
	io_uring_queue_exit(&r->ring);
	free(r);
	return rc;
}

static struct op *op_new(struct fl_uring *r, const char *path, enum op_kind kind)
{
	size_t n = strlen(path) + 1;
	struct op *o = calloc(1, sizeof(*o) + n);

	if (!o)
		return NULL;
	memcpy(o->path, path, n);
	o->r = r;
	o->kind = kind;
	o->fd = -1;
	return o;
}

/* Starts o now, or queues it behind the others.  Returns 0 (o's callback
 * runs later from the loop), or the error of a submission queue that could
 * not be submitted (o is freed, its callback never runs). */
static int start(struct fl_uring *r, struct op *o)
{
	if (r->stats.in_progress < r->max_active && !r->waiting.head) {
		int rc;

		o->step = STEP_OPEN;
		rc = issue(r, o);
		if (rc < 0) {
			free_op(o);
			return rc;
		}
		list_push(&r->active, o);
		r->stats.in_progress++;
	} else {
		list_push(&r->waiting, o);
		r->stats.waiting++;
		r->stats.queued++;
	}
	if (!r->in_drain)
		(void)submit(r);
	return 0;
}

int fl_uring_read_file(struct fl_uring *r, const char *path, size_t max_bytes, fl_uring_read_cb cb,
		       void *ctx)
{
	struct op *o;

	if (!r || !path || !cb || max_bytes > FL_URING_DEFAULT_MAX_READ)
		return -EINVAL;
	if (r->closing)
		return -ESHUTDOWN;
	o = op_new(r, path, OP_READ);
	if (!o)
		return -ENOMEM;
	o->max = max_bytes ? max_bytes : FL_URING_DEFAULT_MAX_READ;
	o->read_cb = cb;
	o->ctx = ctx;
	return start(r, o);
}

int fl_uring_write_file(struct fl_uring *r, const char *path, const void *data, size_t len,
			fl_uring_write_cb cb, void *ctx)
{
	struct op *o;

	if (!r || !path || !cb || (!data && len) || len > UINT32_MAX)
		return -EINVAL;
	if (r->closing)
		return -ESHUTDOWN;
	o = op_new(r, path, OP_WRITE);
	if (!o)
		return -ENOMEM;
	o->wdata = data ? data : "";
	o->wlen = len;
	o->write_cb = cb;
	o->ctx = ctx;
	return start(r, o);
}

const struct fl_uring_stats *fl_uring_stats(const struct fl_uring *r)
{
	return &r->stats;
}

static void on_poll_closed(uv_handle_t *h)
{
	struct fl_uring *r = h->data;
	void (*cb)(void *) = r->close_cb;
	void *ctx = r->close_ctx;

	close(r->efd);
	free(r);
	if (cb)
		cb(ctx);
}

/* Cancels what is in flight and reaps every completion, so no kernel
 * worker still writes into a buffer that is about to be freed. */
static void quiesce(struct fl_uring *r)
{
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;

	if (r->sqe_inflight && make_room(r, 1) == 0) {
		sqe = io_uring_get_sqe(&r->ring);
		io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
		io_uring_sqe_set_data64(sqe, UD_CANCEL);
		r->sqe_inflight++;
		r->unsubmitted++;
	}
	(void)submit(r);
	while (r->sqe_inflight) {
		int rc = io_uring_wait_cqe(&r->ring, &cqe);

		if (rc == -EINTR)
			continue;
		if (rc < 0)
			break;
		on_cqe(r, io_uring_cqe_get_data64(cqe), cqe->res);
		io_uring_cqe_seen(&r->ring, cqe);
	}
}

static void cancel_list(struct fl_uring *r, struct oplist *l)
{
	struct op *o;

	while ((o = l->head)) {
		list_del(l, o);
		if (o->fd >= 0)
			close(o->fd);
		if (o->kind == OP_READ)
			o->read_cb(-ECANCELED, NULL, 0, o->ctx);
		else
			o->write_cb(-ECANCELED, o->ctx);
		r->stats.failed++;
		free_op(o);
	}
}

void fl_uring_close(struct fl_uring *r, void (*close_cb)(void *ctx), void *ctx)
{
	if (!r || uv_is_closing((uv_handle_t *)&r->poll))
		return;
	r->close_cb = close_cb;
	r->close_ctx = ctx;
	if (!r->closing) {
		r->closing = 1;
		quiesce(r);
		io_uring_queue_exit(&r->ring);
		cancel_list(r, &r->active);
		cancel_list(r, &r->waiting);
		r->stats.in_progress = r->stats.waiting = 0;
	}
	uv_poll_stop(&r->poll);
	uv_close((uv_handle_t *)&r->poll, on_poll_closed);
}
