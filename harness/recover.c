/* Recovery of unfinished runs (see recover.h). */
#include "harness/recover.h"

#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "harness/journal.h"
#include "harness/statedir.h"
#include "injectors/injector.h"

#define SAID_MAX 512

/* ---- scanning ------------------------------------------------------------- */

struct scan {
	struct fl_recover_run *run;
	bool ended;
	bool *matched; /* per fault: a reverted record matched it */
	size_t cap;
	int rc; /* -ENOMEM */
};

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

static const char *str_of(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int add_fault(struct scan *s, const struct fl_jrec *rec)
{
	struct fl_recover_run *r = s->run;
	const cJSON *undo = cJSON_GetObjectItemCaseSensitive(rec->json, "undo");
	struct fl_recover_fault *f;
	char *text;

	if (!cJSON_IsObject(undo))
		return 0; /* not something recover can use */
	if (r->nfaults == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 8;
		struct fl_recover_fault *nf = realloc(r->faults, cap * sizeof(*nf));
		bool *nm;

		if (!nf)
			return -ENOMEM;
		r->faults = nf;
		nm = realloc(s->matched, cap * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		s->matched = nm;
		s->cap = cap;
	}
	text = cJSON_PrintUnformatted(undo);
	if (!text)
		return -ENOMEM;
	f = &r->faults[r->nfaults];
	memset(f, 0, sizeof(*f));
	f->undo = strdup(text);
	cJSON_free(text);
	f->action = dup_or_empty(str_of(rec->json, "action"));
	f->family = dup_or_empty(str_of(undo, "family"));
	f->t_ns = rec->t_ns;
	f->nothing = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(undo, "nothing"));
	s->matched[r->nfaults] = false;
	r->nfaults++;
	if (!f->undo || !f->action || !f->family)
		return -ENOMEM;
	return 0;
}

static void match_reverted(struct scan *s, const struct fl_jrec *rec)
{
	const char *action = str_of(rec->json, "action");
	struct fl_recover_run *r = s->run;

	if (!action)
		return;
	for (size_t i = r->nfaults; i-- > 0;)
		if (!s->matched[i] && strcmp(r->faults[i].action, action) == 0) {
			s->matched[i] = true;
			return;
		}
}

static int scan_record(void *ctx, const struct fl_jrec *rec)
{
	struct scan *s = ctx;
	int rc = 0;

	if (strcmp(rec->type, "run-start") == 0) {
		const cJSON *pid = cJSON_GetObjectItemCaseSensitive(rec->json, "pid");
		const cJSON *start = cJSON_GetObjectItemCaseSensitive(rec->json, "pid_start");
		const char *id = str_of(rec->json, "run");

		if (id && !s->run->run_id[0]) {
			free(s->run->run_id);
			if (!(s->run->run_id = strdup(id)))
				return -ENOMEM;
		}
		if (cJSON_IsNumber(pid) && pid->valuedouble > 0)
			s->run->pid = (long)pid->valuedouble;
		if (cJSON_IsNumber(start) && start->valuedouble > 0)
			s->run->pid_start = (uint64_t)start->valuedouble;
	} else if (strcmp(rec->type, "undo") == 0) {
		rc = add_fault(s, rec);
	} else if (strcmp(rec->type, "reverted") == 0) {
		match_reverted(s, rec);
	} else if (strcmp(rec->type, "run-end") == 0) {
		s->ended = true;
	}
	return rc;
}

static void run_release(struct fl_recover_run *r)
{
	for (size_t i = 0; i < r->nfaults; i++) {
		free(r->faults[i].action);
		free(r->faults[i].family);
		free(r->faults[i].undo);
	}
	free(r->faults);
	free(r->path);
	free(r->run_id);
	memset(r, 0, sizeof(*r));
}

/* Reads one journal into *r; *unfinished says whether to keep it. */
static int scan_journal(const char *path, FILE *report, struct fl_recover_run *r, bool *unfinished)
{
	struct scan s = { .run = r };
	struct rs_err e = { "" };
	size_t kept = 0;
	int rc;

	memset(r, 0, sizeof(*r));
	*unfinished = false;
	r->path = strdup(path);
	r->run_id = strdup("");
	if (!r->path || !r->run_id) {
		run_release(r);
		return -ENOMEM;
	}
	rc = fl_journal_read(path, NULL, scan_record, &s, NULL, &e);
	if (rc < 0) {
		if (rc != -ENOMEM && report)
			fprintf(report, "skipping %s: %s\n", path, e.msg);
		free(s.matched);
		run_release(r);
		return rc == -ENOMEM ? rc : 0;
	}
	/* Keep the unmatched faults only, in journal order. */
	for (size_t i = 0; i < r->nfaults; i++) {
		if (s.matched[i]) {
			free(r->faults[i].action);
			free(r->faults[i].family);
			free(r->faults[i].undo);
			continue;
		}
		r->faults[kept++] = r->faults[i];
		if (!r->faults[i].nothing)
			r->pending++;
	}
	r->nfaults = kept;
	free(s.matched);
	if (s.ended) {
		run_release(r);
		return 0;
	}
	r->live = fl_journal_locked(path) == 1 ||
		  (r->pid > 0 && fl_proc_alive((pid_t)r->pid, r->pid_start));
	*unfinished = true;
	return 0;
}

static int by_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void fl_recover_list_release(struct fl_recover_list *l)
{
	for (size_t i = 0; i < l->nruns; i++)
		run_release(&l->runs[i]);
	free(l->runs);
	l->runs = NULL;
	l->nruns = 0;
}

int fl_recover_scan(const char *statedir, FILE *report, struct fl_recover_list *out,
		    struct rs_err *err)
{
	char **names = NULL, path[FL_STATE_PATH_MAX];
	size_t n = 0, cap = 0;
	struct dirent *d;
	DIR *dir;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	dir = opendir(statedir);
	if (!dir) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		rs__err_set(err, "cannot read state directory '%s': %s", statedir, strerror(-rc));
		return rc;
	}
	while ((d = readdir(dir))) {
		size_t l = strlen(d->d_name);

		if (l <= 6 || strcmp(d->d_name + l - 6, ".jsonl") != 0 || d->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **nn = realloc(names, (cap = cap ? 2 * cap : 16) * sizeof(*nn));

			if (!nn)
				goto oom;
			names = nn;
		}
		if (!(names[n] = strdup(d->d_name)))
			goto oom;
		n++;
	}
	closedir(dir);
	dir = NULL;
	if (n)
		qsort(names, n, sizeof(*names), by_name);
	for (size_t i = 0; i < n; i++) {
		struct fl_recover_run r;
		bool keep;

		if (snprintf(path, sizeof(path), "%s/%s", statedir, names[i]) >= (int)sizeof(path))
			continue;
		if ((rc = scan_journal(path, report, &r, &keep)) < 0)
			goto oom;
		if (!keep)
			continue;
		{
			struct fl_recover_run *nr =
			    realloc(out->runs, (out->nruns + 1) * sizeof(*nr));

			if (!nr) {
				run_release(&r);
				goto oom;
			}
			out->runs = nr;
			out->runs[out->nruns++] = r;
		}
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	return 0;
oom:
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	fl_recover_list_release(out);
	return rs__enomem(err, "recover: scanning the state directory");
}

int fl_recover_pending(const char *statedir, size_t *n, struct rs_err *err)
{
	struct fl_recover_list l;
	int rc;

	*n = 0;
	if ((rc = fl_recover_scan(statedir, NULL, &l, err)) < 0)
		return rc;
	for (size_t i = 0; i < l.nruns; i++)
		if (!l.runs[i].live)
			*n += l.runs[i].pending;
	fl_recover_list_release(&l);
	return 0;
}

/* ---- recovering ----------------------------------------------------------- */

static const char *run_name(const struct fl_recover_run *r)
{
	return r->run_id[0] ? r->run_id : r->path;
}

/* Reverts the faults of one journal; returns the first failure or 0. */
static int recover_one(const struct fl_recover_run *r, FILE *report, struct fl_recover_summary *sum,
		       struct rs_err *err)
{
	struct fl_journal *j = NULL;
	struct rs_err e = { "" };
	size_t reverted = 0, failed = 0;
	int rc, first = 0;

	rc = fl_journal_open_append(&j, r->path, &e);
	if (rc == -EWOULDBLOCK) {
		if (report)
			fprintf(report, "run %s: in use by a running faultline, not touched\n",
				run_name(r));
		sum->live++;
		return 0;
	}
	if (rc < 0) {
		rs__err_set(err, "%s", e.msg);
		if (report)
			fprintf(report, "run %s: %s\n", run_name(r), e.msg);
		return rc;
	}
	for (size_t i = r->nfaults; i-- > 0;) {
		const struct fl_recover_fault *f = &r->faults[i];
		char said[SAID_MAX];

		rc = fl_fault_revert_undo_msg(f->undo, said, sizeof(said), &e);
		if (rc == 0) {
			if (report)
				fprintf(report, "%s\n", said);
			rc = fl_journal_reverted(j, 0, f->action, "recover", said);
			if (rc < 0) {
				/* The fault is reverted, but the journal cannot say so:
				 * a later recover reverts it again (idempotent). */
				rs__err_set(&e, "%s", fl_journal_error(j));
			} else if (!f->nothing) {
				reverted++;
			}
		}
		if (rc < 0) {
			if (report)
				fprintf(report, "could not revert '%s' (%s): %s\n", f->action,
					f->family, e.msg);
			if (!first) {
				first = rc;
				rs__err_set(err, "run %s: could not revert '%s' (%s): %s",
					    run_name(r), f->action, f->family, e.msg);
			}
			failed++;
			if (fl_journal_recover_failed(j, 0, f->action, e.msg) < 0 && report)
				fprintf(report, "%s\n", fl_journal_error(j));
		}
	}
	if (!failed) {
		rc = fl_journal_end(j, 0, 3, "recovered");
		if (rc < 0 && !first) {
			first = rc;
			rs__err_set(err, "%s", fl_journal_error(j));
		}
		if (report && rc == 0) {
			if (r->nfaults)
				fprintf(report, "run %s: recovered (%zu fault%s reverted)\n",
					run_name(r), reverted, reverted == 1 ? "" : "s");
			else
				fprintf(report, "run %s: closed, nothing to undo\n", run_name(r));
		}
		if (rc == 0)
			sum->runs++;
	} else if (report) {
		fprintf(report,
			"run %s: %zu fault%s still applied; fix the cause and run "
			"'faultline recover' again\n",
			run_name(r), failed, failed == 1 ? "" : "s");
	}
	sum->reverted += reverted;
	sum->failed += failed;
	(void)fl_journal_close(j, NULL);
	return first;
}

int fl_recover_run(const char *statedir, FILE *report, struct fl_recover_summary *sum,
		   struct rs_err *err)
{
	struct fl_recover_summary local;
	struct fl_recover_list l;
	int rc, first = 0;

	sum = sum ? sum : &local;
	memset(sum, 0, sizeof(*sum));
	if ((rc = fl_recover_scan(statedir, report, &l, err)) < 0)
		return rc;
	for (size_t i = 0; i < l.nruns; i++) {
		const struct fl_recover_run *r = &l.runs[i];

		if (r->live) {
			if (report)
				fprintf(report, "run %s: pid %ld is still running, not touched\n",
					run_name(r), r->pid);
			sum->live++;
			continue;
		}
		rc = recover_one(r, report, sum, first ? NULL : err);
		if (rc < 0 && !first)
			first = rc;
	}
	fl_recover_list_release(&l);
	return first;
}
