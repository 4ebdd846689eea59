/* SPDX-License-Identifier: GPL-2.0-only */
/* Decisions from the ring buffer: kept in a ring for `masctl events`, written to the audit
 * trail at a bounded rate per agent, the rest counted and reported as suppressed. */
#ifndef MAS_EVENTS_H
#define MAS_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "audit.h"
#include "mas_abi.h"

#define EVENTS_RING 4096

struct mas_events;

#define EVENTS_NAME_MAX 64

struct mas_event_rec {
	uint64_t seq; /* 1, 2, ... in arrival order */
	uint64_t realtime_usec;
	struct mas_event e;
	char agent[EVENTS_NAME_MAX]; /* names as they were when the decision was made */
	char dest[EVENTS_NAME_MAX];
};

/* Names for ids in events; they may return NULL for an id that is unknown. */
struct events_names {
	const char *(*agent)(void *userdata, uint32_t agent_id);
	const char *(*dest)(void *userdata, uint64_t generation, uint16_t dest);
	void *userdata;
};

struct events_options {
	struct mas_audit *audit; /* NULL: no journal records */
	unsigned journal_rate; /* records per agent per second; beyond it events are counted */
	bool verbose; /* every decision on stderr too */
	struct events_names names;
};

int events_new(const struct events_options *o, struct mas_events **ret);
void events_handle(struct mas_events *ev, const struct mas_event *e);

/* Close the current one-second windows: a summary record for each agent that had events
 * suppressed. Call about once a second. */
void events_tick(struct mas_events *ev);

/* Events with seq > since, oldest first, at most max; returns how many were copied. */
size_t events_since(const struct mas_events *ev, uint64_t since, struct mas_event_rec *out,
		    size_t max);
uint64_t events_last_seq(const struct mas_events *ev);
uint64_t events_suppressed_total(const struct mas_events *ev);
uint64_t events_journaled_total(const struct mas_events *ev);
void events_free(struct mas_events *ev);

const char *events_verdict_name(uint8_t v);
const char *events_reason_name(uint8_t r);
const char *events_hook_name(uint8_t h);
const char *events_proto_name(uint8_t p);
/* The event's address as text ("127.0.0.1", "::1"). */
void events_format_addr(const struct mas_event *e, char *buf, size_t len);

#endif
