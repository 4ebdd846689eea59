/* SPDX-License-Identifier: GPL-2.0-only */
/* `masctl audit verify|pubkey`: the only place that turns the verifier's report into output and
 * exit codes. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "audit_cli.h"
#include "audit_verify.h"
#include "fileio.h"

#define DEFAULT_STATE_DIR "/var/lib/masd"

static void usage(FILE *f)
{
	fprintf(f, "usage: masctl audit verify [--pubkey FILE] [--file EXPORT | --directory DIR]\n"
		   "                           [--state-dir DIR] [--retention-days N] [--json]\n"
		   "       masctl audit pubkey [--state-dir DIR] [--json]\n"
		   "verify trusts only the pinned first public key: --pubkey FILE, else\n"
		   "STATE_DIR/" AUDIT_FIRST_PUB_PATH " (state dir default " DEFAULT_STATE_DIR ").\n"
		   "Without --file/--directory it reads the local journal. EXPORT may be '-'.\n");
}

static int read_pubkey(const char *path, uint8_t pub[AUDIT_PUB_LEN])
{
	char *buf = NULL;
	size_t len = 0, s = 0;
	int r = fileio_read_all(path, 4096, &buf, &len);

	if (r < 0)
		return r;
	while (s < len && (buf[s] == ' ' || buf[s] == '\n' || buf[s] == '\t' || buf[s] == '\r'))
		s++;
	while (len > s && (buf[len - 1] == ' ' || buf[len - 1] == '\n' || buf[len - 1] == '\t' ||
			   buf[len - 1] == '\r'))
		len--;
	r = audit_unhex(buf + s, len - s, pub, AUDIT_PUB_LEN);
	free(buf);
	return r;
}

static void fail(bool json, const char *what, int err)
{
	if (json) {
		printf("{\"error\":\"%s: %s\"}\n", what, strerror(-err));
	}
	fprintf(stderr, "masctl audit: %s: %s\n", what, strerror(-err));
}

static int cmd_pubkey(const char *state_dir, bool json)
{
	char hex[65];
	int r = audit_first_pubkey(state_dir, hex);

	if (r < 0) {
		fail(json, "cannot read the first public key under the state dir", r);
		return 1;
	}
	if (json)
		printf("{\"algorithm\":\"ed25519\",\"pubkey\":\"%s\"}\n", hex);
	else
		printf("%s\n", hex);
	return 0;
}

int audit_cli_main(int argc, char **argv, bool json)
{
	static const struct option opts[] = {
		{ "pubkey", required_argument, NULL, 'k' },
		{ "file", required_argument, NULL, 'f' },
		{ "directory", required_argument, NULL, 'D' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "retention-days", required_argument, NULL, 'r' },
		{ "now", required_argument, NULL, 'n' }, /* for tests: verify as of this time */
		{ "grace", required_argument, NULL, 'g' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	const char *pubfile = NULL, *file = NULL, *dir = NULL, *state_dir = DEFAULT_STATE_DIR;
	struct audit_verify_options vo = { 0 };
	struct audit_verifier *v = NULL;
	struct audit_report *rep = NULL;
	char path[4096];
	uint64_t u, line = 0;
	int c, r, rc = 1;

	if (argc < 1) {
		usage(stderr);
		return 2;
	}
	optind = 0; /* a full getopt reset: masctl parsed its own options before */
	opterr = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'k':
			pubfile = optarg;
			break;
		case 'f':
			file = optarg;
			break;
		case 'D':
			dir = optarg;
			break;
		case 's':
			state_dir = optarg;
			break;
		case 'r':
		case 'n':
		case 'g':
			if (audit_parse_u64(optarg, strlen(optarg), &u) < 0 ||
			    (c != 'n' && u > UINT32_MAX)) {
				fprintf(stderr, "masctl audit: bad number '%s'\n", optarg);
				return 2;
			}
			if (c == 'r')
				vo.retention_days = (uint32_t)u;
			else if (c == 'g')
				vo.grace_seconds = (uint32_t)u;
			else
				vo.now_usec = u;
			break;
		case 'j':
			json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc || (file && dir)) {
		usage(stderr);
		return 2;
	}
	if (strcmp(argv[0], "pubkey") == 0)
		return cmd_pubkey(state_dir, json);
	if (strcmp(argv[0], "verify") != 0) {
		usage(stderr);
		return 2;
	}
	if (!pubfile) {
		snprintf(path, sizeof(path), "%s/%s", state_dir, AUDIT_FIRST_PUB_PATH);
		pubfile = path;
	}
	r = read_pubkey(pubfile, vo.pinned);
	if (r < 0) {
		fail(json, "cannot read the pinned public key", r);
		return 1;
	}
	r = audit_verifier_new(&vo, &v);
	if (r < 0)
		goto err;
	if (file) {
		FILE *f = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");

		if (!f) {
			r = -errno;
			goto err;
		}
		r = audit_verifier_add_export(v, f, &line);
		if (f != stdin)
			fclose(f);
		if (r < 0) {
			char what[128];

			snprintf(what, sizeof(what), "export input unreadable near line %llu",
				 (unsigned long long)line);
			fail(json, what, r);
			goto out;
		}
	} else {
		r = audit_verifier_add_journal(v, dir);
		if (r < 0)
			goto err;
	}
	r = audit_verifier_finish(v, &rep);
	if (r < 0)
		goto err;
	audit_report_print(stdout, rep, json);
	rc = rep->tampered ? 4 : 0;
	goto out;
err:
	fail(json, "verification failed", r);
out:
	audit_report_free(rep);
	audit_verifier_free(v);
	return rc;
}
