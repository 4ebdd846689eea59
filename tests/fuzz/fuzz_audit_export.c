/* SPDX-License-Identifier: GPL-2.0-only */
/* libFuzzer: the audit verifier on `journalctl -o export` input an attacker may have written:
 * the export parser, the record parser and the chain checks, to the report. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct audit_verify_options o = { .now_usec = 1700000000000000ull, .retention_days = 90 };
	struct audit_verifier *v = NULL;
	struct audit_report *rep = NULL;
	uint64_t line = 0;
	FILE *f;

	if (size == 0)
		return 0;
	f = fmemopen((void *)data, size, "r");
	if (!f)
		return 0;
	memset(o.pinned, 0x5a, sizeof(o.pinned));
	if (audit_verifier_new(&o, &v) == 0) {
		audit_verifier_add_export(v, f, &line);
		if (audit_verifier_finish(v, &rep) == 0) {
			FILE *null = fopen("/dev/null", "we");

			if (null) {
				audit_report_print(null, rep, true);
				fclose(null);
			}
			audit_report_free(rep);
		}
		audit_verifier_free(v);
	}
	fclose(f);
	return 0;
}
