/* The client probe family: the load generator's own view, read through the
 * runner's struct fl_client_source at the sample's now_ns. */
#include "probes/probe.h"

#include <errno.h>
#include <string.h>

#include "probes/http1.h" /* fl_strerror_lc */

static int client_open(struct fl_probe_inst *p, struct rs_err *err)
{
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	const struct fl_probe_env *env = fl__probe_env(p);

	if (!cfg->client.metric || !*cfg->client.metric)
		return rs__einval(err, "client.metric is required");
	if (!env->client || !env->client->read)
		return rs__einval(err, "no load generator to read '%s' from (env.client is NULL)",
				  cfg->client.metric);
	return 0;
}

static void client_sample(struct fl_probe_inst *p, uint64_t now_ns)
{
	const struct fl_probe_cfg *cfg = fl_probe_config(p);
	const struct fl_client_source *src = fl__probe_env(p)->client;
	double v = 0;
	char e[80];
	int rc = src->read(src->ctx, cfg->client.metric, now_ns, &v);

	if (rc == -ENODATA)
		fl__probe_done(p, rc, 0, "no load interval yet for client.%s", cfg->client.metric);
	else if (rc < 0)
		fl__probe_done(p, rc, 0, "cannot read client.%s: %s", cfg->client.metric,
			       fl_strerror_lc(-rc, e, sizeof(e)));
	else
		fl__probe_done(p, 0, v, NULL);
}

static void client_close(struct fl_probe_inst *p)
{
	fl__probe_family_closed(p);
}

const struct fl_probe_family_ops fl__probe_client_ops = {
	.name = "client",
	.family = FL_PROBE_CLIENT,
	.default_timeout_ns = 1000000000ull,
	.open = client_open,
	.sample = client_sample,
	.close = client_close,
};
