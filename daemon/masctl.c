/* SPDX-License-Identifier: GPL-2.0-only */
/* masctl: the SRE's command line. Offline validation here; everything else is a call to masd
 * over the control socket, rendered as text or as one JSON document. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <systemd/sd-bus.h>
#include <systemd/sd-journal.h>

#include "audit_cli.h"
#include "compile.h"
#include "control.h"
#include "diff.h"
#include "events.h"
#include "fileio.h"
#include "json.h"
#include "keys.h"
#include "msgid.h"
#include "policy.h"
#include "resolver.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INVALID = 3, EXIT_TAMPER = 4 };

static const char *socket_path = "/run/masd/control.sock";
static bool json;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: masctl [--socket PATH] [--json] COMMAND\n\n"
		"Commands:\n"
		"  policy validate FILE   check a policy offline (no daemon needed)\n"
		"  policy diff FILE [--replay DURATION]\n"
		"                         what applying FILE would change; with --replay, the\n"
		"                         recorded flows of the last DURATION (30s, 10m, 2h, 1d)\n"
		"                         whose verdict FILE would change\n"
		"  policy apply FILE      apply a policy atomically; prints the new generation\n"
		"  policy show            the active policy and its generation\n"
		"  status                 daemon, programs, policy generation, counters\n"
		"  agents                 per agent: cgroup, state, counts per verdict, and per\n"
		"                         class the tokens left, per cap the open connections\n"
		"  events [--follow]      recent decisions\n"
		"  keys list              keyrings: active version, age, next rotation, overdue\n"
		"  keys rotate NAME [--now] [--revoke]\n"
		"                         rotate a key now: a new version is delivered, then\n"
		"                         activated (--now at once; --revoke also destroys the old)\n"
		"  audit verify [--pubkey FILE] [--file EXPORT | --directory DIR]\n"
		"                         check the signed audit trail; exit 4 on tampering\n"
		"  audit pubkey           the pinned first public key, to store off-host\n"
		"  teardown               remove enforcement (admin only)\n\n"
		"Options:\n"
		"  --socket PATH   control socket (default $MASD_SOCKET or /run/masd/control.sock)\n"
		"  --json          one JSON document on stdout\n"
		"  -h, --help      this text\n\n"
		"Exit status: 0 success, 1 failed or refused, 2 usage, 3 invalid policy,\n"
		"4 audit verification found tampering.\n");
}

static int connect_bus(sd_bus **ret)
{
	sd_bus *b = NULL;
	char *addr = NULL;
	int r;

	if (asprintf(&addr, "unix:path=%s", socket_path) < 0)
		return -ENOMEM;
	r = sd_bus_new(&b);
	if (r >= 0)
		r = sd_bus_set_address(b, addr);
	if (r >= 0)
		r = sd_bus_set_bus_client(b, 0);
	if (r >= 0)
		r = sd_bus_start(b);
	free(addr);
	if (r < 0) {
		fprintf(stderr, "masctl: cannot reach masd at %s: %s\n", socket_path, strerror(-r));
		sd_bus_unref(b);
		return r;
	}
	*ret = b;
	return 0;
}

/* Call a method; on failure print why and return the exit code to use. */
static int call(sd_bus *b, const char *method, sd_bus_message **reply, const char *sig, ...)
{
	sd_bus_error error = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL;
	va_list ap;
	int r;

	r = sd_bus_message_new_method_call(b, &m, NULL, MAS_CONTROL_PATH, MAS_CONTROL_IFACE,
					   method);
	if (r >= 0 && sig) {
		va_start(ap, sig);
		r = sd_bus_message_appendv(m, sig, ap);
		va_end(ap);
	}
	if (r >= 0)
		r = sd_bus_call(b, m, 0, &error, reply);
	sd_bus_message_unref(m);
	if (r >= 0)
		return EXIT_OK;
	if (sd_bus_error_has_name(&error, MAS_ERR_INVALID_POLICY)) {
		fprintf(stderr, "%s\n", error.message);
		r = EXIT_INVALID;
	} else {
		fprintf(stderr, "masctl: %s: %s\n", method,
			error.message ? error.message : strerror(-r));
		r = EXIT_FAIL;
	}
	sd_bus_error_free(&error);
	return r;
}

static void format_time(uint64_t usec, char *buf, size_t len)
{
	time_t t = (time_t)(usec / 1000000);
	struct tm tm;

	if (!usec) {
		snprintf(buf, len, "-");
		return;
	}
	localtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static int cmd_validate(const char *file)
{
	struct mas_policy *p = NULL;
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };
	struct json j;
	int r;

	r = policy_parse_file(file, &p, &err);
	if (r == 0)
		r = compile_policy(p, NULL, 1, 0, &c, &err);
	if (json) {
		json_begin(&j, stdout);
		json_object(&j, NULL);
		json_string(&j, "file", file);
		json_bool(&j, "valid", r == 0);
		if (r == 0) {
			json_uint(&j, "destinations", p->n_destinations);
			json_uint(&j, "agents", p->n_agents);
			json_uint(&j, "rate_limits", p->n_rate_limits);
			json_uint(&j, "keys", p->n_keys);
		} else {
			json_string(&j, "error", err.msg);
			json_uint(&j, "line", err.line);
			json_uint(&j, "column", err.col);
		}
		json_end(&j);
		json_finish(&j);
	} else if (r == 0) {
		printf("%s: valid: %zu destinations, %zu agents, %zu rate-limit classes, %zu keys\n",
		       file, p->n_destinations, p->n_agents, p->n_rate_limits, p->n_keys);
	} else {
		fprintf(stderr, "%s\n", err.msg[0] ? err.msg : strerror(-r));
	}
	compile_free(c);
	policy_free(p);
	if (r == 0)
		return EXIT_OK;
	return r == -EINVAL ? EXIT_INVALID : EXIT_FAIL;
}

/* Whether buf is strict UTF-8 without NUL bytes (no overlong forms, no surrogates, nothing past
 * U+10FFFF): what a D-Bus string may carry. */
static bool bus_string_ok(const char *buf, size_t len)
{
	const unsigned char *p = (const unsigned char *)buf, *end = p + len;

	while (p < end) {
		unsigned char c = *p, lo = 0x80, hi = 0xbf;
		size_t n;

		if (c == 0)
			return false;
		if (c < 0x80) {
			p++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			n = 2;
		} else if (c >= 0xe0 && c <= 0xef) {
			n = 3;
			lo = c == 0xe0 ? 0xa0 : 0x80; /* overlong */
			hi = c == 0xed ? 0x9f : 0xbf; /* surrogates */
		} else if (c >= 0xf0 && c <= 0xf4) {
			n = 4;
			lo = c == 0xf0 ? 0x90 : 0x80;
			hi = c == 0xf4 ? 0x8f : 0xbf;
		} else {
			return false;
		}
		if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
			return false;
		for (size_t i = 2; i < n; i++)
			if ((p[i] & 0xc0) != 0x80)
				return false;
		p += n;
	}
	return true;
}

static int cmd_apply(sd_bus *b, const char *file)
{
	sd_bus_message *reply = NULL;
	char *text = NULL;
	size_t len = 0;
	uint64_t gen = 0;
	int r;

	/* masd parses it, names file:line:col of an error as policy validate does, and audits
	 * the refusal; parsing here too would double the time a large policy takes */
	r = fileio_read_all(file, MAS_POLICY_MAX_BYTES, &text, &len);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", file, strerror(-r));
		return EXIT_FAIL;
	}
	if (!bus_string_ok(text, len)) {
		/* a text D-Bus cannot carry: the parser says where it goes wrong */
		struct mas_policy *p = NULL;
		struct mas_error err = { 0 };

		r = policy_parse_buffer(text, len, file, &p, &err);
		policy_free(p);
		free(text);
		fprintf(stderr, "%s\n", err.msg[0] ? err.msg : "policy: not UTF-8 text");
		return EXIT_INVALID;
	}
	r = call(b, "Apply", &reply, "ss", file, text);
	free(text);
	if (r != EXIT_OK)
		return r;
	sd_bus_message_read(reply, "t", &gen);
	sd_bus_message_unref(reply);
	if (json) {
		struct json j;

		json_begin(&j, stdout);
		json_object(&j, NULL);
		json_string(&j, "file", file);
		json_uint(&j, "generation", gen);
		json_end(&j);
		json_finish(&j);
	} else {
		printf("%s applied: generation %llu\n", file, (unsigned long long)gen);
	}
	return EXIT_OK;
}

/* "30s", "10m", "2h", "1d" or a combination such as "1h30m"; 0 when invalid. */
static uint64_t parse_duration_usec(const char *s)
{
	uint64_t total = 0;

	if (!*s)
		return 0;
	while (*s) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		uint64_t unit;

		if (end == s)
			return 0;
		switch (*end) {
		case 's':
			unit = 1;
			break;
		case 'm':
			unit = 60;
			break;
		case 'h':
			unit = 3600;
			break;
		case 'd':
			unit = 86400;
			break;
		default:
			return 0;
		}
		if (v > 36500ull * 86400)
			return 0;
		total += v * unit * 1000000ull;
		s = end + 1;
	}
	return total;
}

/* A flow as the journal's FLOW_SUMMARY records give it, summed over the records. */
struct replay_flow {
	char agent[64];
	char dest[64];
	char addr[64];
	char proto[8];
	char verdict[16];
	struct diff_flow f;
	uint64_t count;
	uint8_t new_verdict;
	uint16_t new_dest;
};

static int journal_field(sd_journal *j, const char *name, char *buf, size_t len)
{
	const void *data;
	size_t n, k = strlen(name);

	if (sd_journal_get_data(j, name, &data, &n) < 0 || n <= k + 1)
		return -ENOENT;
	n -= k + 1;
	if (n >= len)
		n = len - 1;
	memcpy(buf, (const char *)data + k + 1, n);
	buf[n] = '\0';
	return 0;
}

static int read_flows(uint64_t since_usec, struct replay_flow **ret, size_t *ret_n)
{
	struct replay_flow *v = NULL;
	size_t n = 0;
	sd_journal *j = NULL;
	int r;

	r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY);
	if (r < 0)
		return r;
	if ((r = sd_journal_add_match(j, "MESSAGE_ID=" MAS_MSGID_FLOW_SUMMARY, 0)) < 0 ||
	    (r = sd_journal_add_conjunction(j)) < 0 ||
	    (r = sd_journal_add_match(j, "SYSLOG_IDENTIFIER=masd", 0)) < 0 ||
	    (r = sd_journal_seek_realtime_usec(j, since_usec)) < 0)
		goto out;
	while ((r = sd_journal_next(j)) > 0) {
		struct replay_flow x = { 0 }, *y = NULL;
		char port[16], count[24];
		uint64_t t = 0;

		if (sd_journal_get_realtime_usec(j, &t) < 0 || t < since_usec)
			continue;
		if (journal_field(j, "MAS_AGENT", x.agent, sizeof(x.agent)) < 0 ||
		    journal_field(j, "MAS_ADDR", x.addr, sizeof(x.addr)) < 0 ||
		    journal_field(j, "MAS_PORT", port, sizeof(port)) < 0 ||
		    journal_field(j, "MAS_PROTO", x.proto, sizeof(x.proto)) < 0 ||
		    journal_field(j, "MAS_VERDICT", x.verdict, sizeof(x.verdict)) < 0 ||
		    journal_field(j, "MAS_COUNT", count, sizeof(count)) < 0)
			continue;
		if (journal_field(j, "MAS_DEST", x.dest, sizeof(x.dest)) < 0)
			snprintf(x.dest, sizeof(x.dest), "-");
		if (inet_pton(AF_INET, x.addr, x.f.addr) == 1)
			x.f.family = AF_INET;
		else if (inet_pton(AF_INET6, x.addr, x.f.addr) == 1)
			x.f.family = AF_INET6;
		else
			continue; /* a folded flow has no address to judge */
		x.f.port = (uint16_t)strtoul(port, NULL, 10);
		x.f.ipproto = !strcmp(x.proto, "udp") ? IPPROTO_UDP : IPPROTO_TCP;
		x.count = strtoull(count, NULL, 10);
		for (size_t i = 0; i < n && !y; i++)
			if (!strcmp(v[i].agent, x.agent) && !strcmp(v[i].addr, x.addr) &&
			    v[i].f.port == x.f.port && !strcmp(v[i].proto, x.proto) &&
			    !strcmp(v[i].verdict, x.verdict))
				y = &v[i];
		if (y) {
			y->count += x.count;
			continue;
		}
		y = realloc(v, (n + 1) * sizeof(*v));
		if (!y) {
			r = -ENOMEM;
			goto out;
		}
		v = y;
		v[n++] = x;
	}
out:
	sd_journal_close(j);
	if (r < 0) {
		free(v);
		return r;
	}
	for (size_t i = 0; i < n; i++)
		v[i].f.agent = v[i].agent;
	*ret = v;
	*ret_n = n;
	return 0;
}

static bool same_hosts(const struct mas_destination *a, const struct mas_destination *b)
{
	if (a->n_hosts != b->n_hosts)
		return false;
	for (size_t i = 0; i < a->n_hosts; i++)
		if (strcasecmp(a->hosts[i], b->hosts[i]))
			return false;
	return true;
}

static int add_dest_addr(struct mas_dest_addrs *d, const struct mas_cidr *c)
{
	struct mas_cidr *nc;

	for (size_t i = 0; i < d->n_cidrs; i++)
		if (d->cidrs[i].family == c->family && !memcmp(d->cidrs[i].addr, c->addr, 16))
			return 0;
	nc = realloc(d->cidrs, (d->n_cidrs + 1) * sizeof(*nc));
	if (!nc)
		return -ENOMEM;
	d->cidrs = nc;
	d->cidrs[d->n_cidrs++] = *c;
	return 0;
}

/* The addresses the new policy's host names stand for: what its resolver answers now, and the
 * addresses the recorded flows reached through a destination whose host names did not
 * change (what masd's resolver had then). */
static int replay_addrs(const struct mas_policy *po, const struct mas_policy *pn,
			const struct replay_flow *fl, size_t nfl, struct mas_dest_addrs **ret)
{
	struct mas_dest_addrs *a = calloc(pn->n_destinations + 1, sizeof(*a));
	int r = 0;

	if (!a)
		return -ENOMEM;
	for (size_t d = 0; d < pn->n_destinations && r == 0; d++) {
		const struct mas_destination *dn = &pn->destinations[d];
		int od = policy_find_destination(po, dn->name);

		for (size_t h = 0; h < dn->n_hosts && r == 0; h++) {
			struct mas_cidr *c = NULL;
			size_t n = 0;

			if (resolver_lookup(&pn->resolver, dn->hosts[h], &c, &n) < 0)
				continue;
			for (size_t i = 0; i < n && r == 0; i++)
				r = add_dest_addr(&a[d], &c[i]);
			free(c);
		}
		if (!dn->n_hosts || od < 0 || !same_hosts(&po->destinations[od], dn))
			continue;
		for (size_t i = 0; i < nfl && r == 0; i++) {
			struct mas_cidr c = { .family = fl[i].f.family,
					      .prefixlen = fl[i].f.family == AF_INET ? 32 : 128 };

			if (strcmp(fl[i].dest, dn->name))
				continue;
			memcpy(c.addr, fl[i].f.addr, 16);
			r = add_dest_addr(&a[d], &c);
		}
	}
	if (r < 0) {
		resolver_addrs_free(a, pn->n_destinations + 1);
		return r;
	}
	*ret = a;
	return 0;
}

/* Rate limits and caps are not predicted: a flow they refused is judged as if it had passed. */
static uint8_t base_verdict(const char *name)
{
	if (!strcmp(name, "deny"))
		return MAS_VERDICT_DENY;
	if (!strcmp(name, "would-deny"))
		return MAS_VERDICT_WOULD_DENY;
	return MAS_VERDICT_ALLOW;
}

static int cmd_diff(sd_bus *b, const char *file, const char *replay)
{
	struct mas_policy *pn = NULL, *po = NULL;
	struct mas_error err = { 0 };
	sd_bus_message *reply = NULL;
	struct replay_flow *fl = NULL;
	struct mas_dest_addrs *addrs = NULL;
	struct mas_compiled *c = NULL;
	const char *name, *text;
	struct diff d = { 0 };
	uint64_t gen = 0, span = 0, since = 0, changed = 0, changed_count = 0;
	size_t nfl = 0;
	struct json j;
	int r;

	if (replay && !(span = parse_duration_usec(replay))) {
		fprintf(stderr, "masctl: --replay %s: expected a duration such as 30s, 10m, 2h\n",
			replay);
		return EXIT_USAGE;
	}
	r = policy_parse_file(file, &pn, &err);
	if (r < 0) {
		fprintf(stderr, "%s\n", err.msg[0] ? err.msg : strerror(-r));
		return r == -EINVAL ? EXIT_INVALID : EXIT_FAIL;
	}
	r = call(b, "Show", &reply, NULL);
	if (r != EXIT_OK)
		goto out;
	r = EXIT_FAIL;
	if (sd_bus_message_read(reply, "sst", &name, &text, &gen) < 0)
		goto out;
	if (policy_parse_buffer(text, strlen(text), *name ? name : "active policy", &po, &err) <
	    0) {
		fprintf(stderr, "masctl: the active policy does not parse here: %s\n", err.msg);
		goto out;
	}
	if (diff_policies(po, pn, &d) < 0)
		goto out;
	if (replay) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		since = (uint64_t)ts.tv_sec * 1000000ull + (uint64_t)ts.tv_nsec / 1000 - span;
		if ((r = read_flows(since, &fl, &nfl)) < 0) {
			fprintf(stderr, "masctl: cannot read the journal: %s\n", strerror(-r));
			r = EXIT_FAIL;
			goto out;
		}
		r = EXIT_FAIL;
		if (replay_addrs(po, pn, fl, nfl, &addrs) < 0 ||
		    compile_policy(pn, addrs, 1, 0, &c, &err) < 0) {
			fprintf(stderr, "masctl: %s\n", err.msg[0] ? err.msg : "out of memory");
			goto out;
		}
		for (size_t i = 0; i < nfl; i++) {
			fl[i].new_verdict = diff_verdict(pn, c, &fl[i].f, &fl[i].new_dest);
			if (fl[i].new_verdict != base_verdict(fl[i].verdict)) {
				changed++;
				changed_count += fl[i].count;
			}
		}
	}
	if (json) {
		json_begin(&j, stdout);
		json_object(&j, NULL);
		json_string(&j, "file", file);
		json_string(&j, "active", name);
		json_uint(&j, "generation", gen);
		json_array(&j, "changes");
		for (size_t i = 0; i < d.n; i++) {
			json_object(&j, NULL);
			json_string(&j, "kind", diff_kind_name(d.v[i].kind));
			json_string(&j, "subject", d.v[i].subject);
			json_string(&j, "detail", d.v[i].detail);
			json_end(&j);
		}
		json_end(&j);
		if (replay) {
			json_object(&j, "replay");
			json_string(&j, "duration", replay);
			json_uint(&j, "since_usec", since);
			json_uint(&j, "flows", nfl);
			json_uint(&j, "flows_changed", changed);
			json_uint(&j, "connections_changed", changed_count);
			json_array(&j, "flows_changing");
			for (size_t i = 0; i < nfl; i++) {
				if (fl[i].new_verdict == base_verdict(fl[i].verdict))
					continue;
				json_object(&j, NULL);
				json_string(&j, "agent", fl[i].agent);
				json_string(&j, "destination", fl[i].dest);
				json_string(&j, "new_destination",
					    fl[i].new_dest < pn->n_destinations ?
						    pn->destinations[fl[i].new_dest].name :
						    "-");
				json_string(&j, "address", fl[i].addr);
				json_uint(&j, "port", fl[i].f.port);
				json_string(&j, "protocol", fl[i].proto);
				json_uint(&j, "count", fl[i].count);
				json_string(&j, "old", fl[i].verdict);
				json_string(&j, "new", events_verdict_name(fl[i].new_verdict));
				json_end(&j);
			}
			json_end(&j);
			json_end(&j);
		}
		json_end(&j);
		json_finish(&j);
	} else {
		printf("policy diff: %s (generation %llu, in force) -> %s\n", name,
		       (unsigned long long)gen, file);
		for (size_t i = 0; i < d.n; i++)
			printf("  %-20s %-24s %s\n", diff_kind_name(d.v[i].kind), d.v[i].subject,
			       d.v[i].detail);
		printf("%zu change%s\n", d.n, d.n == 1 ? "" : "s");
		if (replay) {
			printf("\nreplay of the last %s: %zu flows recorded, %llu would change "
			       "(%llu connections)\n",
			       replay, nfl, (unsigned long long)changed,
			       (unsigned long long)changed_count);
			if (changed)
				printf("  %-16s %-16s %-39s %5s %-5s %8s  %s\n", "AGENT",
				       "DESTINATION", "ADDRESS", "PORT", "PROTO", "COUNT",
				       "VERDICT");
			for (size_t i = 0; i < nfl; i++) {
				if (fl[i].new_verdict == base_verdict(fl[i].verdict))
					continue;
				printf("  %-16s %-16s %-39s %5u %-5s %8llu  %s -> %s\n",
				       fl[i].agent, fl[i].dest, fl[i].addr, fl[i].f.port,
				       fl[i].proto, (unsigned long long)fl[i].count, fl[i].verdict,
				       events_verdict_name(fl[i].new_verdict));
			}
		}
	}
	r = EXIT_OK;
out:
	diff_free(&d);
	compile_free(c);
	if (addrs)
		resolver_addrs_free(addrs, pn->n_destinations + 1);
	free(fl);
	policy_free(po);
	policy_free(pn);
	sd_bus_message_unref(reply);
	return r;
}

static int cmd_show(sd_bus *b)
{
	sd_bus_message *reply = NULL;
	const char *name, *text;
	uint64_t gen;
	int r = call(b, "Show", &reply, NULL);

	if (r != EXIT_OK)
		return r;
	if (sd_bus_message_read(reply, "sst", &name, &text, &gen) < 0) {
		sd_bus_message_unref(reply);
		return EXIT_FAIL;
	}
	if (json) {
		struct json j;

		json_begin(&j, stdout);
		json_object(&j, NULL);
		json_string(&j, "file", name);
		json_uint(&j, "generation", gen);
		json_string(&j, "policy", text);
		json_end(&j);
		json_finish(&j);
	} else {
		printf("# %s, generation %llu\n%s", name, (unsigned long long)gen, text);
		if (*text && text[strlen(text) - 1] != '\n')
			putchar('\n');
	}
	sd_bus_message_unref(reply);
	return EXIT_OK;
}

static int cmd_status(sd_bus *b)
{
	sd_bus_message *reply = NULL;
	const char *version, *root, *bpffs, *s;
	uint64_t gen, applied, drops, suppressed, count;
	uint32_t agents, enrolled, overdue = 0;
	uint64_t apply_usec = 0, audit_seq = 0;
	int adopted, r = call(b, "Status", &reply, NULL);
	char when[64];
	struct json j;

	if (r != EXIT_OK)
		return r;
	if (sd_bus_message_read(reply, "sttuuttssb", &version, &gen, &applied, &agents, &enrolled,
				&drops, &suppressed, &root, &bpffs, &adopted) < 0)
		goto bad;
	format_time(applied, when, sizeof(when));
	if (json) {
		json_begin(&j, stdout);
		json_object(&j, NULL);
		json_string(&j, "daemon", "running");
		json_string(&j, "version", version);
		json_uint(&j, "generation", gen);
		json_uint(&j, "applied_usec", applied);
		json_uint(&j, "agents", agents);
		json_uint(&j, "enrolled", enrolled);
		json_uint(&j, "ringbuf_drops", drops);
		json_uint(&j, "journal_suppressed", suppressed);
		json_string(&j, "cgroup_root", root);
		json_string(&j, "bpffs_dir", bpffs);
		json_bool(&j, "adopted", adopted);
		json_array(&j, "not_enforced");
	} else {
		printf("masd:          running (ABI %s)\n", version);
		printf("policy:        generation %llu, applied %s\n", (unsigned long long)gen,
		       when);
		printf("agents:        %u (%u enrolled)\n", agents, enrolled);
		printf("programs:      connect4 connect6 sendmsg4 sendmsg6 sock_create on %s\n",
		       root);
		printf("pins:          %s%s\n", bpffs, adopted ? " (adopted at start)" : "");
		printf("events:        %llu lost in the ring buffer, %llu not journaled (flood "
		       "control)\n",
		       (unsigned long long)drops, (unsigned long long)suppressed);
		printf("not enforced:  ");
	}
	if (sd_bus_message_enter_container(reply, 'a', "s") < 0)
		goto bad;
	r = 0;
	while (sd_bus_message_read(reply, "s", &s) > 0) {
		if (json)
			json_string(&j, NULL, s);
		else
			printf("%s%s", r++ ? ", " : "", s);
	}
	sd_bus_message_exit_container(reply);
	if (json) {
		json_end(&j);
		json_object(&j, "decisions");
	} else {
		printf("%s\ndecisions:    ",
		       r ? " (validated, enforced in a later version)" : "none");
	}
	if (sd_bus_message_enter_container(reply, 'a', "(st)") < 0)
		goto bad;
	while (sd_bus_message_read(reply, "(st)", &s, &count) > 0) {
		if (json)
			json_uint(&j, s, count);
		else
			printf(" %s %llu", s, (unsigned long long)count);
	}
	sd_bus_message_exit_container(reply);
	if (sd_bus_message_read(reply, "utt", &overdue, &apply_usec, &audit_seq) < 0)
		goto bad;
	if (json) {
		json_end(&j);
		json_uint(&j, "keys_overdue", overdue);
		json_uint(&j, "apply_duration_usec", apply_usec);
		json_uint(&j, "audit_seq", audit_seq);
		json_end(&j);
		json_finish(&j);
	} else {
		printf("\n");
		if (overdue)
			printf("keys:          WARNING: %u keyring(s) overdue for rotation "
			       "(masctl keys list)\n",
			       overdue);
	}
	sd_bus_message_unref(reply);
	return EXIT_OK;
bad:
	fprintf(stderr, "masctl: Status: unexpected reply\n");
	sd_bus_message_unref(reply);
	return EXIT_FAIL;
}

/* One row of the Limits reply. */
struct limit_row {
	char *agent, *kind, *name;
	uint64_t now, max, bytes_now, bytes_max;
};

static void free_limits(struct limit_row *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(l[i].agent);
		free(l[i].kind);
		free(l[i].name);
	}
	free(l);
}

static int read_limits(sd_bus *b, struct limit_row **ret, size_t *ret_n)
{
	sd_bus_message *reply = NULL;
	struct limit_row *l = NULL;
	const char *agent, *kind, *name;
	uint64_t now, max, bnow, bmax;
	size_t n = 0;
	int r = call(b, "Limits", &reply, NULL);

	if (r != EXIT_OK)
		return r;
	if (sd_bus_message_enter_container(reply, 'a', "(ssstttt)") < 0) {
		sd_bus_message_unref(reply);
		return EXIT_FAIL;
	}
	while (sd_bus_message_read(reply, "(ssstttt)", &agent, &kind, &name, &now, &max, &bnow,
				   &bmax) > 0) {
		struct limit_row *nl = realloc(l, (n + 1) * sizeof(*l));

		if (!nl) {
			free_limits(l, n);
			sd_bus_message_unref(reply);
			return EXIT_FAIL;
		}
		l = nl;
		l[n] = (struct limit_row){ strdup(agent), strdup(kind), strdup(name), now,
					   max,		  bnow,		bmax };
		n++;
	}
	sd_bus_message_unref(reply);
	*ret = l;
	*ret_n = n;
	return EXIT_OK;
}

static void json_limits(struct json *j, const char *agent, const struct limit_row *l, size_t n)
{
	json_array(j, "classes");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(l[i].agent, agent) || strcmp(l[i].kind, "class"))
			continue;
		json_object(j, NULL);
		json_string(j, "class", l[i].name);
		json_uint(j, "tokens", l[i].now);
		json_uint(j, "burst", l[i].max);
		if (l[i].bytes_max) {
			json_uint(j, "bytes", l[i].bytes_now);
			json_uint(j, "burst_bytes", l[i].bytes_max);
		}
		json_end(j);
	}
	json_end(j);
	json_array(j, "caps");
	for (size_t i = 0; i < n; i++) {
		if (strcmp(l[i].agent, agent) || strcmp(l[i].kind, "cap"))
			continue;
		json_object(j, NULL);
		json_string(j, "destination", l[i].name);
		json_uint(j, "open", l[i].now);
		json_uint(j, "max_connections", l[i].max);
		json_end(j);
	}
	json_end(j);
}

static int cmd_agents(sd_bus *b)
{
	sd_bus_message *reply = NULL;
	const char *name, *role, *mode, *state, *cg;
	uint64_t allow, deny, would, rl, capped;
	struct limit_row *lim = NULL;
	size_t n_lim = 0;
	int r = call(b, "Agents", &reply, NULL);
	struct json j;

	if (r != EXIT_OK)
		return r;
	if (read_limits(b, &lim, &n_lim) != EXIT_OK || /* */
	    sd_bus_message_enter_container(reply, 'a', "(sssssttttt)") < 0) {
		free_limits(lim, n_lim);
		sd_bus_message_unref(reply);
		return EXIT_FAIL;
	}
	if (json) {
		json_begin(&j, stdout);
		json_array(&j, NULL);
	} else {
		printf("%-16s %-8s %-8s %-12s %9s %9s %10s %12s %7s  %s\n", "AGENT", "ROLE", "MODE",
		       "STATE", "ALLOWED", "DENIED", "WOULD-DENY", "RATE-LIMITED", "CAPPED",
		       "CGROUP");
	}
	while (sd_bus_message_read(reply, "(sssssttttt)", &name, &role, &mode, &state, &cg, &allow,
				   &deny, &would, &rl, &capped) > 0) {
		if (json) {
			json_object(&j, NULL);
			json_string(&j, "agent", name);
			json_string(&j, "role", role);
			json_string(&j, "mode", mode);
			json_string(&j, "state", state);
			json_string(&j, "cgroup", cg);
			json_uint(&j, "allowed", allow);
			json_uint(&j, "denied", deny);
			json_uint(&j, "would_deny", would);
			json_uint(&j, "rate_limited", rl);
			json_uint(&j, "capped", capped);
			json_limits(&j, name, lim, n_lim);
			json_end(&j);
		} else {
			printf("%-16s %-8s %-8s %-12s %9llu %9llu %10llu %12llu %7llu  %s\n", name,
			       role, mode, state, (unsigned long long)allow,
			       (unsigned long long)deny, (unsigned long long)would,
			       (unsigned long long)rl, (unsigned long long)capped, cg);
		}
	}
	if (json) {
		json_end(&j);
		json_finish(&j);
	} else if (n_lim) {
		/* the limits: tokens left of each class's burst, open sockets against each cap */
		printf("\n%-16s %-6s %-20s %12s %s\n", "AGENT", "LIMIT", "NAME", "NOW/MAX",
		       "BYTES NOW/MAX");
		for (size_t i = 0; i < n_lim; i++) {
			char now[48], bytes[64] = "-";

			snprintf(now, sizeof(now), "%llu/%llu", (unsigned long long)lim[i].now,
				 (unsigned long long)lim[i].max);
			if (lim[i].bytes_max)
				snprintf(bytes, sizeof(bytes), "%llu/%llu",
					 (unsigned long long)lim[i].bytes_now,
					 (unsigned long long)lim[i].bytes_max);
			printf("%-16s %-6s %-20s %12s %s\n", lim[i].agent, lim[i].kind, lim[i].name,
			       now, bytes);
		}
	}
	free_limits(lim, n_lim);
	sd_bus_message_unref(reply);
	return EXIT_OK;
}

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static int cmd_events(sd_bus *b, bool follow)
{
	uint64_t since = 0;
	struct json j;
	bool header = false;

	if (json) {
		json_begin(&j, stdout);
		json_array(&j, NULL);
	}
	signal(SIGINT, on_stop);
	signal(SIGTERM, on_stop);
	do {
		sd_bus_message *reply = NULL;
		uint64_t next, seq, usec, gen;
		const char *agent, *verdict, *reason, *hook, *proto, *addr, *dest, *comm;
		uint16_t port;
		uint32_t pid, uid;
		int r = call(b, "Events", &reply, "tu", since, 1024);

		if (r != EXIT_OK)
			return r;
		if (sd_bus_message_read(reply, "t", &next) < 0 ||
		    sd_bus_message_enter_container(reply, 'a', "(ttssssssqsuust)") < 0) {
			sd_bus_message_unref(reply);
			return EXIT_FAIL;
		}
		if (!json && !header) {
			printf("%-19s %-14s %-12s %-14s %-5s %-26s %-12s %s\n", "TIME", "AGENT",
			       "VERDICT", "REASON", "PROTO", "ADDRESS", "DESTINATION", "PROCESS");
			header = true;
		}
		while (sd_bus_message_read(reply, "(ttssssssqsuust)", &seq, &usec, &agent, &verdict,
					   &reason, &hook, &proto, &addr, &port, &dest, &pid, &uid,
					   &comm, &gen) > 0) {
			char when[64], where[80];

			format_time(usec, when, sizeof(when));
			if (!strcmp(hook, "sock_create"))
				snprintf(where, sizeof(where), "(socket)");
			else
				snprintf(where, sizeof(where),
					 strchr(addr, ':') ? "[%s]:%u" : "%s:%u", addr, port);
			if (json) {
				json_object(&j, NULL);
				json_uint(&j, "seq", seq);
				json_uint(&j, "time_usec", usec);
				json_string(&j, "agent", agent);
				json_string(&j, "verdict", verdict);
				json_string(&j, "reason", reason);
				json_string(&j, "hook", hook);
				json_string(&j, "protocol", proto);
				json_string(&j, "address", addr);
				json_uint(&j, "port", port);
				json_string(&j, "destination", dest);
				json_uint(&j, "pid", pid);
				json_uint(&j, "uid", uid);
				json_string(&j, "comm", comm);
				json_uint(&j, "generation", gen);
				json_end(&j);
			} else {
				printf("%-19s %-14s %-12s %-14s %-5s %-26s %-12s %s[%u]\n", when,
				       agent, verdict, reason, proto, where, dest, comm, pid);
			}
		}
		sd_bus_message_unref(reply);
		fflush(stdout);
		if (next == since) {
			if (!follow)
				break;
			usleep(250000);
		}
		since = next;
	} while (!stop);
	if (json) {
		json_end(&j);
		json_finish(&j);
	}
	return EXIT_OK;
}

static int cmd_keys_list(sd_bus *b)
{
	sd_bus_message *reply = NULL;
	struct keys_list_entry *e = NULL;
	size_t n = 0, cap = 0;
	const char *name, *type, *active, *pending;
	uint64_t since, age, next, every, keep, nv;
	int overdue, r = call(b, "KeysList", &reply, NULL);

	if (r != EXIT_OK)
		return r;
	if (sd_bus_message_enter_container(reply, 'a', "(ssssttttttb)") < 0)
		goto bad;
	while ((r = sd_bus_message_read(reply, "(ssssttttttb)", &name, &type, &active, &pending,
					&since, &age, &next, &every, &keep, &nv, &overdue)) > 0) {
		struct keys_list_entry *x;

		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			x = realloc(e, cap * sizeof(*e));
			if (!x)
				goto bad;
			e = x;
		}
		x = &e[n++];
		memset(x, 0, sizeof(*x));
		snprintf(x->name, sizeof(x->name), "%s", name);
		x->type = !strcmp(type, "hs256")   ? MAS_KEY_HS256 :
			  !strcmp(type, "ed25519") ? MAS_KEY_ED25519 :
						     MAS_KEY_AES256GCM;
		snprintf(x->active_kid, sizeof(x->active_kid), "%s", active);
		snprintf(x->pending_kid, sizeof(x->pending_kid), "%s", pending);
		x->active_since = since;
		x->age_s = age;
		x->next_rotation = next;
		x->rotate_every_s = every;
		x->keep_previous_for_s = keep;
		x->n_versions = (size_t)nv;
		x->overdue = overdue;
	}
	if (r < 0)
		goto bad;
	keys_cli_format(stdout, e, n, (uint64_t)time(NULL), json ? KEYS_FORMAT_JSON : 0);
	free(e);
	sd_bus_message_unref(reply);
	return EXIT_OK;
bad:
	fprintf(stderr, "masctl: KeysList: unexpected reply\n");
	free(e);
	sd_bus_message_unref(reply);
	return EXIT_FAIL;
}

static int cmd_keys_rotate(sd_bus *b, const char *name, unsigned flags)
{
	sd_bus_message *reply = NULL;
	int r = call(b, "KeysRotate", &reply, "su", name, (uint32_t)flags);

	sd_bus_message_unref(reply);
	if (r != EXIT_OK)
		return r;
	if (json)
		printf("{\"key\":\"%s\",\"rotated\":true}\n", name);
	else
		printf("key %s rotated%s\n", name,
		       flags & KEYS_ROTATE_IMMEDIATE ? ": the new version is active" :
						       ": the new version is delivered and "
						       "activates after the lead time");
	return EXIT_OK;
}

static int cmd_teardown(sd_bus *b)
{
	sd_bus_message *reply = NULL;
	int r = call(b, "Teardown", &reply, NULL);

	sd_bus_message_unref(reply);
	if (r == EXIT_OK && !json)
		printf("enforcement removed; masd has stopped\n");
	else if (r == EXIT_OK)
		printf("{\"teardown\":true}\n");
	return r;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = { { "socket", required_argument, NULL, 's' },
					      { "json", no_argument, NULL, 'j' },
					      { "help", no_argument, NULL, 'h' },
					      {} };
	const char *env = getenv("MASD_SOCKET");
	sd_bus *b = NULL;
	const char *cmd, *sub = NULL, *replay = NULL;
	unsigned key_flags = 0;
	int c, r;

	if (env && *env)
		socket_path = env;
	while ((c = getopt_long(argc, argv, "+h", opts, NULL)) >= 0) {
		switch (c) {
		case 's':
			socket_path = optarg;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return EXIT_OK;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	cmd = argv[optind++];
	if (optind < argc)
		sub = argv[optind];

	/* accept --json after the command too */
	for (int i = optind; i < argc; i++)
		if (!strcmp(argv[i], "--json")) {
			json = true;
			memmove(&argv[i], &argv[i + 1], (size_t)(argc - i) * sizeof(*argv));
			argc--;
			i--;
		}
	sub = optind < argc ? argv[optind] : NULL;

	/* the verifier reads the journal itself: no daemon needed, nor trusted */
	if (!strcmp(cmd, "audit")) {
		if (!sub)
			goto usage;
		return audit_cli_main(argc - optind, argv + optind, json);
	}
	if (!strcmp(cmd, "policy") && sub && !strcmp(sub, "validate")) {
		if (argc - optind != 2)
			goto usage;
		return cmd_validate(argv[optind + 1]);
	}
	if (!strcmp(cmd, "policy") && sub && !strcmp(sub, "diff")) {
		if (argc - optind == 2)
			replay = NULL;
		else if (argc - optind == 4 && !strcmp(argv[optind + 2], "--replay"))
			replay = argv[optind + 3];
		else if (argc - optind == 3 && !strncmp(argv[optind + 2], "--replay=", 9))
			replay = argv[optind + 2] + 9;
		else
			goto usage;
	} else if (!strcmp(cmd, "policy")) {
		if (!sub || (strcmp(sub, "apply") && strcmp(sub, "show")))
			goto usage;
		if (!strcmp(sub, "apply") && argc - optind != 2)
			goto usage;
		if (!strcmp(sub, "show") && argc - optind != 1)
			goto usage;
	} else if (!strcmp(cmd, "events")) {
		if (argc - optind > 1 || (sub && strcmp(sub, "--follow") && strcmp(sub, "-f")))
			goto usage;
	} else if (!strcmp(cmd, "keys")) {
		if (!sub || (strcmp(sub, "list") && strcmp(sub, "rotate")))
			goto usage;
		if (!strcmp(sub, "list") && argc - optind != 1)
			goto usage;
		if (!strcmp(sub, "rotate")) {
			if (argc - optind < 2)
				goto usage;
			for (int i = optind + 2; i < argc; i++) {
				if (!strcmp(argv[i], "--now"))
					key_flags |= KEYS_ROTATE_IMMEDIATE;
				else if (!strcmp(argv[i], "--revoke"))
					key_flags |= KEYS_ROTATE_REVOKE | KEYS_ROTATE_IMMEDIATE;
				else
					goto usage;
			}
		}
	} else if (!strcmp(cmd, "status") || !strcmp(cmd, "agents") || !strcmp(cmd, "teardown")) {
		if (argc - optind != 0)
			goto usage;
	} else {
		fprintf(stderr, "masctl: unknown command '%s'\n", cmd);
		goto usage;
	}
	if (connect_bus(&b) < 0)
		return EXIT_FAIL;
	if (!strcmp(cmd, "policy") && !strcmp(sub, "apply"))
		r = cmd_apply(b, argv[optind + 1]);
	else if (!strcmp(cmd, "policy") && !strcmp(sub, "diff"))
		r = cmd_diff(b, argv[optind + 1], replay);
	else if (!strcmp(cmd, "policy"))
		r = cmd_show(b);
	else if (!strcmp(cmd, "status"))
		r = cmd_status(b);
	else if (!strcmp(cmd, "agents"))
		r = cmd_agents(b);
	else if (!strcmp(cmd, "events"))
		r = cmd_events(b, sub != NULL);
	else if (!strcmp(cmd, "keys") && !strcmp(sub, "list"))
		r = cmd_keys_list(b);
	else if (!strcmp(cmd, "keys"))
		r = cmd_keys_rotate(b, argv[optind + 1], key_flags);
	else
		r = cmd_teardown(b);
	sd_bus_flush_close_unref(b);
	return r;
usage:
	usage(stderr);
	return EXIT_USAGE;
}
