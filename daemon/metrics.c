/* SPDX-License-Identifier: GPL-2.0-only */
/* Metrics for node-exporter's textfile collector: the exact kernel counters per agent and
 * verdict, event losses, policy generation and apply time, enrolment, keys and the audit
 * chain. Read from the same sources as `masctl status --json`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fileio.h"
#include "metrics.h"

/* Label values: backslash, quote and newline escaped. */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		if (*s == '\n') {
			fputs("\\n", f);
			continue;
		}
		fputc(*s, f);
	}
}

int metrics_format(struct mas_daemon *d, FILE *f)
{
	uint64_t(*counts)[MAS_VERDICT_MAX] = NULL, drops = 0, full = 0;
	size_t na = d->policy ? d->policy->n_agents : 0;
	int r;

	if ((r = daemon_agent_counts(d, &counts)) < 0)
		return r;
	fputs("# HELP masd_decisions_total Decisions of the kernel programs, per agent and "
	      "verdict (exact).\n# TYPE masd_decisions_total counter\n",
	      f);
	for (size_t a = 0; a <= na; a++) {
		for (int v = 0; v < MAS_VERDICT_MAX; v++) {
			fputs("masd_decisions_total{agent=\"", f);
			label(f, a < na ? d->policy->agents[a].name : "(none)");
			fprintf(f, "\",verdict=\"%s\"} %llu\n", events_verdict_name((uint8_t)v),
				(unsigned long long)counts[a][v]);
		}
	}
	free(counts);
	fputs("# HELP masd_agent_enrolled Whether the agent's cgroup is enrolled (1) or waiting "
	      "(0).\n# TYPE masd_agent_enrolled gauge\n",
	      f);
	for (size_t a = 0; a < na; a++) {
		fputs("masd_agent_enrolled{agent=\"", f);
		label(f, d->policy->agents[a].name);
		fprintf(f, "\"} %d\n", d->agents[a].status == AGENT_ENROLLED);
	}
	enforcer_stat(d->enf, MAS_STAT_RINGBUF_DROPS, &drops);
	enforcer_stat(d->enf, MAS_STAT_COUNTER_FULL, &full);
	fprintf(f,
		"# HELP masd_ringbuf_drops_total Decisions the ring buffer could not take (they "
		"are still counted).\n# TYPE masd_ringbuf_drops_total counter\n"
		"masd_ringbuf_drops_total %llu\n"
		"# HELP masd_counter_full_total Decisions the counter map had no room for.\n"
		"# TYPE masd_counter_full_total counter\nmasd_counter_full_total %llu\n"
		"# HELP masd_journal_suppressed_total Decisions not journaled by flood control.\n"
		"# TYPE masd_journal_suppressed_total counter\nmasd_journal_suppressed_total %llu\n"
		"# HELP masd_policy_generation The policy generation in force.\n"
		"# TYPE masd_policy_generation gauge\nmasd_policy_generation %llu\n"
		"# HELP masd_policy_applied_timestamp_seconds When the policy in force was applied.\n"
		"# TYPE masd_policy_applied_timestamp_seconds gauge\n"
		"masd_policy_applied_timestamp_seconds %.3f\n"
		"# HELP masd_policy_apply_seconds How long the last apply took, text to flipped "
		"maps.\n# TYPE masd_policy_apply_seconds gauge\nmasd_policy_apply_seconds %.6f\n"
		"# HELP masd_audit_chain_seq The next sequence number of the audit chain.\n"
		"# TYPE masd_audit_chain_seq counter\nmasd_audit_chain_seq %llu\n"
		"# HELP masd_audit_spooled Audit records waiting for journald.\n"
		"# TYPE masd_audit_spooled gauge\nmasd_audit_spooled %llu\n"
		"# HELP masd_keys_overdue Keyrings whose rotation is overdue.\n"
		"# TYPE masd_keys_overdue gauge\nmasd_keys_overdue %zu\n",
		(unsigned long long)drops, (unsigned long long)full,
		(unsigned long long)events_suppressed_total(d->events),
		(unsigned long long)enforcer_generation(d->enf), (double)d->applied_usec / 1e6,
		(double)d->apply_duration_usec / 1e6, (unsigned long long)audit_next_seq(d->audit),
		(unsigned long long)audit_spooled(d->audit),
		d->keys ? keys_overdue(d->keys, (uint64_t)time(NULL)) : (size_t)0);
	return ferror(f) ? -EIO : 0;
}

int metrics_write(struct mas_daemon *d, const char *path)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	int r;

	if (!f)
		return -errno;
	r = metrics_format(d, f);
	if (fclose(f) != 0 && r == 0)
		r = -errno;
	if (r == 0)
		r = fileio_write_atomic(path, buf, len, 0644, (uid_t)-1, (gid_t)-1);
	free(buf);
	return r;
}
