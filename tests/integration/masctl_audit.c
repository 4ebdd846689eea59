/* SPDX-License-Identifier: GPL-2.0-only */
/* `masctl audit ...` without the rest of masctl, for the integration tests:
 *   masctl_audit [--json] verify|pubkey [OPTIONS] */
#include <stdbool.h>
#include <string.h>

#include "audit_cli.h"

int main(int argc, char **argv)
{
	bool json = argc > 1 && strcmp(argv[1], "--json") == 0;

	if (json) {
		argv++;
		argc--;
	}
	return audit_cli_main(argc - 1, argv + 1, json);
}
