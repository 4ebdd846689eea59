/* SPDX-License-Identifier: GPL-2.0-only */
/* The audit trail's writer: structured journald records (integrity fields come with the audit
 * chain; this is the seam every record passes through). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <syslog.h>
#define SD_JOURNAL_SUPPRESS_LOCATION /* records carry no source positions of masd */
#include <systemd/sd-journal.h>

#include "audit.h"

struct mas_audit {
	struct mas_audit_options opts;
};

int audit_open(const struct mas_audit_options *opts, struct mas_audit **ret)
{
	struct mas_audit *a = calloc(1, sizeof(*a));

	if (!a)
		return -ENOMEM;
	a->opts = *opts;
	*ret = a;
	return 0;
}

int audit_emit(struct mas_audit *a, const char *message_id, const char *category, int priority,
	       const char *message, const struct audit_field *fields, size_t n_fields)
{
	size_t n = 0, cap = n_fields + 5;
	struct iovec *iov = calloc(cap, sizeof(*iov));
	char **strs = calloc(cap, sizeof(*strs));
	int r = 0;

	(void)a;
	if (!iov || !strs) {
		r = -ENOMEM;
		goto out;
	}
#define ADD(...)                                           \
	do {                                               \
		if (asprintf(&strs[n], __VA_ARGS__) < 0) { \
			strs[n] = NULL;                    \
			r = -ENOMEM;                       \
			goto out;                          \
		}                                          \
		iov[n].iov_base = strs[n];                 \
		iov[n].iov_len = strlen(strs[n]);          \
		n++;                                       \
	} while (0)
	ADD("SYSLOG_IDENTIFIER=masd");
	ADD("MESSAGE_ID=%s", message_id);
	ADD("PRIORITY=%d", priority);
	ADD("MESSAGE=%s", message);
	ADD("MAS_CATEGORY=%s", category);
	for (size_t i = 0; i < n_fields; i++)
		ADD("%s=%s", fields[i].name, fields[i].value ? fields[i].value : "");
#undef ADD
	r = sd_journal_sendv(iov, (int)n);
out:
	for (size_t i = 0; i < n; i++)
		free(strs[i]);
	free(strs);
	free(iov);
	return r;
}

uint64_t audit_tick(struct mas_audit *a)
{
	(void)a;
	return 60000;
}

void audit_close(struct mas_audit *a)
{
	free(a);
}
