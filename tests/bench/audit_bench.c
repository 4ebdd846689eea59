/* SPDX-License-Identifier: GPL-2.0-only */
/* Audit trail throughput, as ratios measured in the same run: records/s written chained and
 * signed vs raw sd_journal_sendv of the same fields, and records/s verified vs plain read-back.
 * Run inside a private journald (tests/bench/bench_audit.sh does). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#define SD_JOURNAL_SUPPRESS_LOCATION 1
#include <systemd/sd-journal.h>

#include "audit.h"
#include "audit_verify.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *x, const void *y)
{
	double a = *(const double *)x, b = *(const double *)y;

	return a < b ? -1 : a > b;
}

static int raw_send(unsigned long i)
{
	char n[48], msg[96];
	struct iovec iov[8];

	snprintf(n, sizeof(n), "MAS_N=%lu", i);
	snprintf(msg, sizeof(msg), "MESSAGE=copywriter -> openai: deny (record %lu)", i);
	iov[0] = (struct iovec){ "SYSLOG_IDENTIFIER=masd-raw", 26 };
	iov[1] = (struct iovec){ "MESSAGE_ID=673b27a1fc6052449dd48a1948ba6a25", 43 };
	iov[2] = (struct iovec){ "PRIORITY=5", 10 };
	iov[3] = (struct iovec){ msg, strlen(msg) };
	iov[4] = (struct iovec){ "MAS_CATEGORY=ai_requests", 24 };
	iov[5] = (struct iovec){ "MAS_AGENT=copywriter", 20 };
	iov[6] = (struct iovec){ "MAS_DESTINATION=openai", 22 };
	iov[7] = (struct iovec){ n, strlen(n) };
	return sd_journal_sendv(iov, 8);
}

static int audited_send(struct mas_audit *a, unsigned long i)
{
	char n[24], msg[96];
	struct audit_field f[] = { { "MAS_AGENT", "copywriter" },
				   { "MAS_DESTINATION", "openai" },
				   { "MAS_N", n } };

	snprintf(n, sizeof(n), "%lu", i);
	snprintf(msg, sizeof(msg), "copywriter -> openai: deny (record %lu)", i);
	return audit_emit(a, "673b27a1fc6052449dd48a1948ba6a25", MAS_CAT_AI_REQUESTS, LOG_NOTICE,
			  msg, f, 3);
}

static int read_back(unsigned long *ret_n)
{
	sd_journal *j = NULL;
	const void *d;
	size_t l;
	unsigned long n = 0;
	int r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);

	if (r < 0)
		return r;
	r = sd_journal_add_match(j, "SYSLOG_IDENTIFIER=masd", 0);
	while (r >= 0 && (r = sd_journal_next(j)) > 0) {
		SD_JOURNAL_FOREACH_DATA(j, d, l);
		n++;
	}
	sd_journal_close(j);
	*ret_n = n;
	return r;
}

int main(int argc, char **argv)
{
	struct mas_audit_options o = { .signed_logs = true };
	struct audit_verify_options vo = { 0 };
	struct audit_verifier *v = NULL;
	struct audit_report *rep = NULL;
	struct mas_audit *a = NULL;
	unsigned long per = 500, rounds = 40, i = 0, nread = 0;
	double t_raw = 0, t_aud = 0, t0, t1, t_read, t_ver, ratios[1024];
	char hex[65];
	int r;

	if (argc < 2) {
		fprintf(stderr, "usage: audit_bench STATE_DIR [RECORDS_PER_ROUND [ROUNDS]]\n");
		return 2;
	}
	o.state_dir = argv[1];
	if (argc > 2)
		per = strtoul(argv[2], NULL, 10);
	if (argc > 3)
		rounds = strtoul(argv[3], NULL, 10);
	r = audit_open(&o, &a);
	if (r < 0) {
		fprintf(stderr, "audit_open: %s\n", strerror(-r));
		return 1;
	}
	if (rounds > 1024)
		rounds = 1024;
	/* Short alternating blocks, so that both see the same journald state and the same load from
	 * whatever else runs on the machine; the median of the per-block ratios resists bursts. */
	for (unsigned long round = 0; round < rounds; round++) {
		t0 = now_s();
		for (unsigned long k = 0; k < per; k++)
			if (raw_send(i + k) < 0)
				return 1;
		t1 = now_s();
		t_raw += t1 - t0;
		for (unsigned long k = 0; k < per; k++) {
			if (audited_send(a, i + k) < 0)
				return 1;
			if ((k & 255) == 0)
				audit_tick(a);
		}
		t_aud += now_s() - t1;
		ratios[round] = (t1 - t0) / (now_s() - t1);
		i += per;
	}
	qsort(ratios, rounds, sizeof(*ratios), cmp_double);
	audit_close(a);
	if (system("journalctl --sync") != 0)
		sleep(1);
	/* warm the page cache first, so that neither pass pays for the cold read */
	if (read_back(&nread) < 0)
		return 1;
	t0 = now_s();
	r = read_back(&nread);
	t_read = now_s() - t0;
	if (r < 0)
		return 1;
	if (audit_first_pubkey(o.state_dir, hex) < 0 || audit_unhex(hex, 64, vo.pinned, 32) < 0)
		return 1;
	t0 = now_s();
	if (audit_verifier_new(&vo, &v) < 0 || audit_verifier_add_journal(v, NULL) < 0 ||
	    audit_verifier_finish(v, &rep) < 0)
		return 1;
	t_ver = now_s() - t0;
	printf("write: raw sd_journal_sendv %.0f records/s, chained+signed %.0f records/s, "
	       "ratio %.3f overall, median of %lu blocks %.3f (%lu records each)\n",
	       (double)i / t_raw, (double)i / t_aud, t_raw / t_aud, rounds, ratios[rounds / 2], i);
	printf("verify: plain read-back %.0f records/s, verify %.0f records/s, ratio %.3f "
	       "(%lu records, %s)\n",
	       (double)nread / t_read, (double)nread / t_ver, t_read / t_ver, nread,
	       rep->tampered ? "TAMPERED" : "intact");
	r = rep->tampered ? 1 : 0;
	audit_report_free(rep);
	audit_verifier_free(v);
	return r;
}
