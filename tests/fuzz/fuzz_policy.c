/* SPDX-License-Identifier: GPL-2.0-only */
/* libFuzzer: the policy parser and validator on any bytes, then the compiler on what they
 * accept (with a few host addresses, so the local-alias code runs too). */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "compile.h"
#include "policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mas_cidr local[3] = {
		{ .family = AF_INET, .addr = { 192, 0, 2, 2 }, .prefixlen = 32 },
		{ .family = AF_INET, .addr = { 255, 255, 255, 255 }, .prefixlen = 32 },
		{ .family = AF_INET6, .addr = { 0xfd, [15] = 2 }, .prefixlen = 128 },
	};
	struct mas_policy *p = NULL;
	struct mas_compiled *c = NULL;
	struct mas_error err = { 0 };

	if (policy_parse_buffer((const char *)data, size, "fuzz.yaml", &p, &err) < 0)
		return 0;
	if (compile_policy_local(p, NULL, local, 3, 1, 2, &c, &err) == 0)
		compile_free(c);
	policy_free(p);
	return 0;
}
