/* SPDX-License-Identifier: GPL-2.0-only */
/* Test driver: a real audit writer without masd. Opens the audit module on a state dir, writes
 * records (ticking like masd's event loop would), evolves the key, closes or "crashes"; or sends
 * a copy of one exported record from this (other) process, as an injector would. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
/* Location fields (CODE_FILE, ...) would be records of our source, not of the event. */
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "audit.h"
#include "audit_key.h"
#include "keys.h"
#include "../lib/audit_tamper.h"

static int usage(void)
{
	fprintf(stderr,
		"usage: audit_writer --state-dir DIR [--records N] [--ckpt-records N]\n"
		"         [--ckpt-seconds T] [--rotate-every K] [--keep-retired FILE]\n"
		"         [--interval-ms M] [--crash] [--crash-at STEP[#N]] [--drain-seconds S]\n"
		"       audit_writer --inject EXPORT --seq S\n");
	return 2;
}

/* The signing key in force, as a thief of the "audit" keyring would hold it, for re-signing. */
static int save_active_key(struct mas_audit *a, const char *to)
{
	struct keys_material m;
	struct audit_key *k = NULL;
	int r;

	r = keys_material_get(audit_keys(a), MAS_AUDIT_KEY_NAME, NULL, &m);
	if (r == 0)
		r = audit_key_from_seed(m.bytes, &k);
	keys_material_clear(&m);
	if (r == 0)
		r = audit_key_save(k, to);
	audit_key_free(k);
	if (r < 0)
		fprintf(stderr, "audit_writer: keep retired key: %s\n", strerror(-r));
	return r;
}

/* --crash-at STEP[#N]: die like kill -9 the Nth time (default 1) the writer or its keyring
 * passes STEP, a point of a key change. */
static char crash_at[64];
static int crash_nth = 1;

static void crash_hook(void *userdata, const char *step)
{
	if (strcmp(step, crash_at) == 0 && --crash_nth == 0)
		_exit(0);
}

static int inject(const char *file, unsigned long long seq)
{
	struct tlog l = { 0 };
	struct iovec iov[256];
	char *strs[256];
	FILE *f = fopen(file, "re");
	struct trec w;
	long i;
	size_t n = 0;
	int r;

	if (!f)
		return 1;
	r = audit_export_parse(f, tlog_parse_cb, &l, NULL);
	fclose(f);
	i = tlog_find(&l, seq);
	if (r < 0 || i < 0) {
		fprintf(stderr, "audit_writer: seq %llu not in %s\n", seq, file);
		tlog_free(&l);
		return 1;
	}
	w = trec_wire(&l.r[i]); /* as masd sent it */
	for (size_t k = 0; k < w.n && n < 256; k++) {
		struct tfield *fl = &w.f[k];

		if (fl->name[0] == '_')
			continue;
		if (asprintf(&strs[n], "%s=%s", fl->name, fl->val) < 0)
			return 1;
		iov[n].iov_base = strs[n];
		iov[n].iov_len = strlen(strs[n]);
		n++;
	}
	r = sd_journal_sendv(iov, (int)n);
	for (size_t k = 0; k < n; k++)
		free(strs[k]);
	trec_free(&w);
	tlog_free(&l);
	if (r < 0) {
		fprintf(stderr, "audit_writer: send: %s\n", strerror(-r));
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state-dir", required_argument, NULL, 's' },
		{ "records", required_argument, NULL, 'n' },
		{ "ckpt-records", required_argument, NULL, 'c' },
		{ "ckpt-seconds", required_argument, NULL, 't' },
		{ "rotate-every", required_argument, NULL, 'k' },
		{ "keep-retired", required_argument, NULL, 'K' },
		{ "interval-ms", required_argument, NULL, 'i' },
		{ "crash", no_argument, NULL, 'x' },
		{ "crash-at", required_argument, NULL, 'X' },
		{ "drain-seconds", required_argument, NULL, 'd' },
		{ "inject", required_argument, NULL, 'I' },
		{ "seq", required_argument, NULL, 'S' },
		{ 0 },
	};
	struct mas_audit_options o = { .signed_logs = true };
	const char *keep = NULL, *inject_file = NULL;
	unsigned long records = 100, rotate_every = 0, interval_ms = 0, drain = 10;
	unsigned long long seq = 0, max_spooled = 0;
	bool crash = false;
	struct mas_audit *a = NULL;
	int c, r;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.state_dir = optarg;
			break;
		case 'n':
			records = strtoul(optarg, NULL, 10);
			break;
		case 'c':
			o.checkpoint_records = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 't':
			o.checkpoint_seconds = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 'k':
			rotate_every = strtoul(optarg, NULL, 10);
			break;
		case 'K':
			keep = optarg;
			break;
		case 'i':
			interval_ms = strtoul(optarg, NULL, 10);
			break;
		case 'x':
			crash = true;
			break;
		case 'X': {
			char *hash;

			snprintf(crash_at, sizeof(crash_at), "%s", optarg);
			hash = strchr(crash_at, '#');
			if (hash) {
				*hash = 0;
				crash_nth = atoi(hash + 1);
			}
			o.crash = crash_hook;
			break;
		}
		case 'd':
			drain = strtoul(optarg, NULL, 10);
			break;
		case 'I':
			inject_file = optarg;
			break;
		case 'S':
			seq = strtoull(optarg, NULL, 10);
			break;
		default:
			return usage();
		}
	}
	if (inject_file)
		return inject(inject_file, seq);
	if (!o.state_dir)
		return usage();
	r = audit_open(&o, &a);
	if (r < 0) {
		fprintf(stderr, "audit_writer: open: %s\n", strerror(-r));
		return 1;
	}
	for (unsigned long i = 0; i < records; i++) {
		char msg[80], n[24];
		struct audit_field f[] = { { "MAS_AGENT", "copywriter" },
					   { "MAS_DESTINATION", "openai" },
					   { "MAS_N", n } };

		snprintf(n, sizeof(n), "%lu", i);
		snprintf(msg, sizeof(msg), "copywriter -> openai: deny (test record %lu)", i);
		r = audit_emit(a, "673b27a1fc6052449dd48a1948ba6a25", MAS_CAT_AI_REQUESTS,
			       LOG_NOTICE, msg, f, 3);
		if (r < 0) {
			fprintf(stderr, "audit_writer: emit: %s\n", strerror(-r));
			return 1;
		}
		if (rotate_every && (i + 1) % rotate_every == 0) {
			if (keep && access(keep, F_OK) != 0 && save_active_key(a, keep) < 0)
				return 1;
			r = audit_rotate_key(a);
			if (r < 0) {
				fprintf(stderr, "audit_writer: rotate: %s\n", strerror(-r));
				return 1;
			}
		}
		audit_tick(a);
		if (audit_spooled(a) > max_spooled)
			max_spooled = audit_spooled(a);
		if (interval_ms)
			usleep((useconds_t)interval_ms * 1000);
	}
	if (crash)
		_exit(0); /* no shutdown checkpoint, state not marked clean */
	for (unsigned long t = 0; audit_spooled(a) && t < drain * 10; t++) {
		usleep(100000);
		audit_tick(a);
	}
	if (audit_spooled(a))
		fprintf(stderr, "audit_writer: %llu records still spooled\n",
			(unsigned long long)audit_spooled(a));
	printf("next_seq=%llu spooled=%llu max_spooled=%llu\n",
	       (unsigned long long)audit_next_seq(a), (unsigned long long)audit_spooled(a),
	       max_spooled);
	audit_close(a);
	return 0;
}
