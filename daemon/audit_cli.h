/* SPDX-License-Identifier: GPL-2.0-only */
/* `masctl audit ...`: verify the audit trail, print the pinned first public key. */
#ifndef MAS_AUDIT_CLI_H
#define MAS_AUDIT_CLI_H

#include <stdbool.h>

/* argv[0] is "verify" or "pubkey". Prints text (or one JSON document when json) on stdout and
 * returns the exit code: 0 intact, 4 tampering found, 1 the operation failed, 2 usage. */
int audit_cli_main(int argc, char **argv, bool json);

#endif
