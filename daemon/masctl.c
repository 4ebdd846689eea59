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

#include <systemd/sd-bus.h>

#include "compile.h"
#include "control.h"
#include "fileio.h"
#include "json.h"
#include "policy.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_INVALID = 3, EXIT_TAMPER = 4 };

static const char *socket_path = "/run/masd/control.sock";
static bool json;

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: masctl [--socket PATH] [--json] COMMAND\n\n"
		"Commands:\n"
		"  policy validate FILE   check a policy offline (no daemon needed)\n"
		"  policy apply FILE      apply a policy atomically; prints the new generation\n"
		"  policy show            the active policy and its generation\n"
		"  status                 daemon, programs, policy generation, counters\n"
		"  agents                 per agent: cgroup, state, counts per verdict, and per\n"
		"                         class the tokens left, per cap the open connections\n"
		"  events [--follow]      recent decisions\n"
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

static int cmd_apply(sd_bus *b, const char *file)
{
	sd_bus_message *reply = NULL;
	struct mas_policy *p = NULL;
	struct mas_error err = { 0 };
	char *text = NULL;
	uint64_t gen = 0;
	int r;

	/* refuse locally first: a clearer error, and nothing sent */
	r = policy_parse_file(file, &p, &err);
	policy_free(p);
	if (r < 0) {
		fprintf(stderr, "%s\n", err.msg[0] ? err.msg : strerror(-r));
		return r == -EINVAL ? EXIT_INVALID : EXIT_FAIL;
	}
	r = fileio_read_all(file, MAS_POLICY_MAX_BYTES, &text, NULL);
	if (r < 0) {
		fprintf(stderr, "%s: cannot read: %s\n", file, strerror(-r));
		return EXIT_FAIL;
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
	uint32_t agents, enrolled;
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
	if (json) {
		json_end(&j);
		json_end(&j);
		json_finish(&j);
	} else {
		printf("\n");
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
	const char *cmd, *sub = NULL;
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

	if (!strcmp(cmd, "policy") && sub && !strcmp(sub, "validate")) {
		if (argc - optind != 2)
			goto usage;
		return cmd_validate(argv[optind + 1]);
	}
	if (!strcmp(cmd, "policy")) {
		if (!sub || (strcmp(sub, "apply") && strcmp(sub, "show")))
			goto usage;
		if (!strcmp(sub, "apply") && argc - optind != 2)
			goto usage;
		if (!strcmp(sub, "show") && argc - optind != 1)
			goto usage;
	} else if (!strcmp(cmd, "events")) {
		if (argc - optind > 1 || (sub && strcmp(sub, "--follow") && strcmp(sub, "-f")))
			goto usage;
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
	else if (!strcmp(cmd, "policy"))
		r = cmd_show(b);
	else if (!strcmp(cmd, "status"))
		r = cmd_status(b);
	else if (!strcmp(cmd, "agents"))
		r = cmd_agents(b);
	else if (!strcmp(cmd, "events"))
		r = cmd_events(b, sub != NULL);
	else
		r = cmd_teardown(b);
	sd_bus_flush_close_unref(b);
	return r;
usage:
	usage(stderr);
	return EXIT_USAGE;
}
