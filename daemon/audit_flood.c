/* SPDX-License-Identifier: GPL-2.0-only */
/* Flood control for audit records: token buckets per key, exact counts of what was held back. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "audit.h"
#include "audit_flood.h"
#include "msgid.h"

#define KEY_MAX 128

struct bucket {
	char key[KEY_MAX]; /* "" for a free slot */
	double tokens;
	uint64_t last_usec;
	uint64_t suppressed; /* since the last report */
	uint64_t since_usec; /* first suppression since the last report */
};

struct audit_flood {
	struct audit_flood_options o;
	struct bucket *b; /* max_keys slots, open addressing, then one shared overflow bucket */
	size_t used;
	uint64_t total;
};

int audit_flood_new(const struct audit_flood_options *o, struct audit_flood **ret)
{
	struct audit_flood *f = calloc(1, sizeof(*f));

	if (!f)
		return -ENOMEM;
	f->o = *o;
	f->o.rate_per_sec = o->rate_per_sec ?: 20;
	f->o.burst = o->burst ?: 50;
	f->o.max_keys = o->max_keys ?: 4096;
	f->b = calloc((size_t)f->o.max_keys + 1, sizeof(*f->b));
	if (!f->b) {
		free(f);
		return -ENOMEM;
	}
	snprintf(f->b[f->o.max_keys].key, KEY_MAX, "(other)");
	f->b[f->o.max_keys].tokens = f->o.burst;
	*ret = f;
	return 0;
}

void audit_flood_free(struct audit_flood *f)
{
	if (!f)
		return;
	free(f->b);
	free(f);
}

static uint64_t fnv1a(const char *s)
{
	uint64_t h = 1469598103934665603ULL;

	for (; *s; s++)
		h = (h ^ (uint8_t)*s) * 1099511628211ULL;
	return h;
}

static struct bucket *lookup(struct audit_flood *f, const char *key)
{
	size_t n = f->o.max_keys, i = (size_t)(fnv1a(key) % n);

	for (size_t probe = 0; probe < n; probe++, i = (i + 1) % n) {
		struct bucket *b = &f->b[i];

		if (b->key[0] == 0) {
			if (f->used >= n * 3 / 4)
				break; /* keep probes short: late keys share the overflow bucket */
			snprintf(b->key, KEY_MAX, "%s", key[0] ? key : "-");
			b->tokens = f->o.burst;
			f->used++;
			return b;
		}
		if (strncmp(b->key, key[0] ? key : "-", KEY_MAX - 1) == 0)
			return b;
	}
	return &f->b[n];
}

bool audit_flood_admit(struct audit_flood *f, const char *key, uint64_t now_usec)
{
	struct bucket *b = lookup(f, key ? key : "");

	if (b->last_usec && now_usec > b->last_usec) {
		b->tokens += (double)(now_usec - b->last_usec) * f->o.rate_per_sec / 1e6;
		if (b->tokens > f->o.burst)
			b->tokens = f->o.burst;
	}
	if (now_usec > b->last_usec || !b->last_usec)
		b->last_usec = now_usec;
	if (b->tokens >= 1.0) {
		b->tokens -= 1.0;
		return true;
	}
	if (!b->suppressed)
		b->since_usec = now_usec;
	b->suppressed++;
	f->total++;
	return false;
}

int audit_flood_report(struct audit_flood *f, struct mas_audit *a, uint64_t now_usec)
{
	int written = 0;

	for (size_t i = 0; i <= f->o.max_keys; i++) {
		struct bucket *b = &f->b[i];
		char n[24], since[24], msg[KEY_MAX + 96];
		struct audit_field fields[] = { { "MAS_FLOOD_KEY", b->key },
						{ "MAS_SUPPRESSED", n },
						{ "MAS_SINCE", since } };
		int r;

		if (!b->suppressed)
			continue;
		snprintf(n, sizeof(n), "%llu", (unsigned long long)b->suppressed);
		snprintf(since, sizeof(since), "%llu", (unsigned long long)b->since_usec);
		snprintf(msg, sizeof(msg), "%llu decision records of %s suppressed (flood control)",
			 (unsigned long long)b->suppressed, b->key);
		r = audit_emit(a, MAS_MSGID_EVENTS_SUPPRESSED, MAS_CAT_AGENT_ACTIONS, LOG_WARNING,
			       msg, fields, 3);
		if (r < 0)
			return written ? written : r;
		b->suppressed = 0;
		written++;
	}
	(void)now_usec;
	return written;
}

uint64_t audit_flood_suppressed_total(const struct audit_flood *f)
{
	return f ? f->total : 0;
}
