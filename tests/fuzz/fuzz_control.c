/* SPDX-License-Identifier: GPL-2.0-only */
/* libFuzzer: the control socket's request handling as masd sets it up, on hostile bytes. A
 * server sd-bus in peer-to-peer mode on one end of a socketpair (as control.c's on_accept makes
 * it), the same object path, interface and method signatures; the fuzzer's bytes are what the
 * peer writes: the SASL handshake and then D-Bus messages. The handlers read their arguments
 * as control.c does; Apply runs what daemon_apply runs before the kernel is touched (parse,
 * validate, compile) and the access check runs for each call. Handlers that only read kernel
 * state are answered with fixed values here. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-bus.h>

#include "compile.h"
#include "control.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mas_policy *control_policy;

static int access_or_deny(enum control_access need, sd_bus_error *error)
{
	gid_t gids[2] = { 100, 1000 };

	/* a caller with the groups above: read-only in the policy below */
	if (control_access_of(control_policy, 1000, gids, 2) >= need)
		return 0;
	return sd_bus_error_set(error, MAS_ERR_ACCESS_DENIED, "permission denied");
}

static int m_apply(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *name, *text;
	struct mas_policy *p = NULL;
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };
	int r;

	if ((r = sd_bus_message_read(m, "ss", &name, &text)) < 0)
		return r;
	if (policy_parse_buffer(text, strlen(text), name, &p, &err) < 0)
		return sd_bus_error_set(error, MAS_ERR_INVALID_POLICY, err.msg);
	if (compile_policy(p, NULL, 2, 1, &c, &err) == 0)
		compile_free(c);
	policy_free(p);
	(void)access_or_deny(CONTROL_ADMIN, error);
	return sd_bus_reply_method_return(m, "t", (uint64_t)2);
}

static int m_rotate(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	const char *name;
	uint32_t flags;
	int r;

	if ((r = access_or_deny(CONTROL_ADMIN, error)) < 0)
		return r;
	if ((r = sd_bus_message_read(m, "su", &name, &flags)) < 0)
		return r;
	return sd_bus_error_setf(error, MAS_ERR_FAILED, "no key named '%s' in the policy", name);
}

static int m_events(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	uint64_t since;
	uint32_t max;
	int r;

	if ((r = access_or_deny(CONTROL_READ, error)) < 0)
		return r;
	if ((r = sd_bus_message_read(m, "tu", &since, &max)) < 0)
		return r;
	return sd_bus_reply_method_return(m, "ta(ttssssssqsuust)", since, 0);
}

static int m_show(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	int r;

	if ((r = access_or_deny(CONTROL_READ, error)) < 0)
		return r;
	return sd_bus_reply_method_return(m, "sst", "p", "version: 1\n", (uint64_t)1);
}

static int m_teardown(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
	int r;

	if ((r = access_or_deny(CONTROL_ADMIN, error)) < 0)
		return r;
	return sd_bus_reply_method_return(m, "");
}

static const sd_bus_vtable vtable[] = {
	SD_BUS_VTABLE_START(0),
	SD_BUS_METHOD("Apply", "ss", "t", m_apply, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Show", "", "sst", m_show, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("KeysRotate", "su", "", m_rotate, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Events", "tu", "ta(ttssssssqsuust)", m_events, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_METHOD("Teardown", "", "", m_teardown, SD_BUS_VTABLE_UNPRIVILEGED),
	SD_BUS_VTABLE_END
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char yaml[] = "version: 1\n"
				   "roles:\n  admin: [all]\n  user: []\n"
				   "control:\n  admin: [\"uid:0\"]\n  user: [\"gid:1000\"]\n";
	sd_id128_t id = { .bytes = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 } };
	struct mas_error err = { 0 };
	sd_bus *bus = NULL;
	int sv[2];

	if (!control_policy && policy_parse_buffer(yaml, sizeof(yaml) - 1, "control.yaml",
						   &control_policy, &err) < 0) {
		fprintf(stderr, "fuzz_control: %s\n", err.msg);
		abort();
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	/* the whole request is in the socket before the server reads: at most one buffer */
	if (size > 200000)
		size = 200000;
	{
		int sz = 1 << 20;

		setsockopt(sv[1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
		setsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	}
	if (size && write(sv[1], data, size) < 0) {
		close(sv[0]);
		close(sv[1]);
		return 0;
	}
	shutdown(sv[1], SHUT_WR);
	if (sd_bus_new(&bus) < 0 || sd_bus_set_fd(bus, sv[0], sv[0]) < 0 ||
	    sd_bus_set_server(bus, 1, id) < 0 ||
	    sd_bus_add_object_vtable(bus, NULL, MAS_CONTROL_PATH, MAS_CONTROL_IFACE, vtable, NULL) <
		    0 ||
	    sd_bus_start(bus) < 0)
		goto out;
	for (int i = 0; i < 256; i++) {
		int r = sd_bus_process(bus, NULL);

		if (r < 0)
			break;
		if (r == 0 && sd_bus_wait(bus, 0) <= 0)
			break;
	}
out:
	sd_bus_flush_close_unref(bus);
	close(sv[1]);
	return 0;
}
