/* SPDX-License-Identifier: GPL-2.0-only */
/* Test tool: tamper with `journalctl -o export` output the way an attacker with the journal
 * files would, for the verifier's tamper corpus. Reads stdin, writes stdout.
 *   audit_tamper list                          seq, MESSAGE_ID and MAS_REASON of each record
 *   audit_tamper modify|delete|duplicate|swap|inject|truncate SEQ
 *   audit_tamper resign SEQ KEYFILE|random      re-sign checkpoint SEQ, rechain after it
 *   audit_tamper foreign-key SEQ                 key change SEQ to a key of the attacker's */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_key.h"
#include "../lib/audit_tamper.h"

int main(int argc, char **argv)
{
	struct tlog l = { 0 };
	struct audit_key *k = NULL;
	unsigned long long seq;
	int r;

	if (argc < 2)
		return 2;
	r = audit_export_parse(stdin, tlog_parse_cb, &l, NULL);
	if (r < 0) {
		fprintf(stderr, "audit_tamper: parse: %s\n", strerror(-r));
		tlog_free(&l);
		return 1;
	}
	if (strcmp(argv[1], "list") == 0) {
		for (size_t i = 0; i < l.n; i++) {
			const char *s = trec_get(&l.r[i], "MAS_SEQ");

			if (s)
				printf("%s %s %s\n", s, trec_get(&l.r[i], "MESSAGE_ID") ?: "-",
				       trec_get(&l.r[i], "MAS_REASON") ?: "-");
		}
		tlog_free(&l);
		return 0;
	}
	if (argc < 3) {
		tlog_free(&l);
		return 2;
	}
	seq = strtoull(argv[2], NULL, 10);
	if (strcmp(argv[1], "resign") == 0 || strcmp(argv[1], "foreign-key") == 0) {
		if (argc > 3 && strcmp(argv[3], "random") != 0)
			r = audit_key_load(argv[3], &k);
		else
			r = audit_key_generate(&k);
		if (r < 0) {
			tlog_free(&l);
			return 1;
		}
		r = strcmp(argv[1], "resign") == 0 ? tamper_resign(&l, seq, k) :
						     tamper_foreign_key(&l, seq, k);
		audit_key_free(k);
	} else {
		r = tamper_apply(&l, argv[1], seq);
	}
	if (r < 0) {
		fprintf(stderr, "audit_tamper: %s %llu: %s\n", argv[1], seq, strerror(-r));
		tlog_free(&l);
		return 1;
	}
	r = tlog_write(stdout, &l);
	tlog_free(&l);
	return r < 0 ? 1 : 0;
}
