/* SPDX-License-Identifier: GPL-2.0-only */
/* Drives daemon/keys.c for the integration tests: one command per run, like masd restarting.
 *
 * keys_driver --state DIR --runtime DIR [--lead S] [--as UID:GID]
 *             --agent NAME[:USER] ... --key NAME:TYPE:ROTATE_S:KEEP_S[:AGENT,AGENT] ... CMD
 *   tick NOW                      open, reconcile, tick; prints the transitions
 *   rotate NAME NOW [immediate|revoke]
 *   list NOW [json]
 *   check NOW                     open (reconcile only) and check state and deliveries agree
 *   churn NAME NOW N              N immediate rotations (for kill -9 at random moments)
 *   read PATH                     open and read PATH (with --as: as that uid)
 *   listdir PATH                  readdir PATH
 *   jwt-sign DIR KEY NOW          HS256 token with DIR/KEY.current, kid in the header
 *   jwt-verify DIR KEY TOKEN NOW  verify with DIR/KEY.KID.key named by the token's kid
 * Exit: 0 ok, 1 failure, 3 EACCES (read/listdir), 2 usage.
 * MAS_KEYS_CRASH_AT=STEP raises SIGKILL at the first crash point named STEP;
 * MAS_KEYS_AUDIT_LOG=FILE appends one line per audit record. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fileio.h"
#include "keys.h"

#define MAX_AGENTS 8
#define MAX_KEYS 8

static struct mas_agent agents[MAX_AGENTS];
static size_t n_agents;
static struct mas_key_conf keys[MAX_KEYS];
static size_t deliver[MAX_KEYS][MAX_AGENTS];
static size_t n_keys;

static int usage(void)
{
	fprintf(stderr, "usage: see the comment at the top of keys_driver.c\n");
	return 2;
}

static int audit_sink(void *ud, const char *id, int prio, const char *msg,
		      const struct audit_field *f, size_t n)
{
	const char *log = getenv("MAS_KEYS_AUDIT_LOG");
	FILE *out;

	(void)ud;
	(void)prio;
	if (!log)
		return 0;
	out = fopen(log, "a");
	if (!out)
		return -errno;
	fprintf(out, "%s", id);
	for (size_t i = 0; i < n; i++)
		fprintf(out, " %s=%s", f[i].name, f[i].value);
	fprintf(out, " MESSAGE=%s\n", msg);
	fflush(out);
	fsync(fileno(out));
	fclose(out);
	return 0;
}

static void crash_hook(void *ud, const char *step)
{
	const char *at = getenv("MAS_KEYS_CRASH_AT");

	(void)ud;
	if (at && strcmp(at, step) == 0) {
		fprintf(stderr, "crash at %s\n", step);
		raise(SIGKILL);
	}
}

static int parse_key(char *spec)
{
	struct mas_key_conf *c = &keys[n_keys];
	char *save = NULL, *type, *rot, *keep, *to;

	if (n_keys == MAX_KEYS)
		return -1;
	c->name = strtok_r(spec, ":", &save);
	type = strtok_r(NULL, ":", &save);
	rot = strtok_r(NULL, ":", &save);
	keep = strtok_r(NULL, ":", &save);
	to = strtok_r(NULL, ":", &save);
	if (!c->name || !type || !rot || !keep)
		return -1;
	if (strcmp(type, "hs256") == 0)
		c->type = MAS_KEY_HS256;
	else if (strcmp(type, "aes-256-gcm") == 0)
		c->type = MAS_KEY_AES256GCM;
	else if (strcmp(type, "ed25519") == 0)
		c->type = MAS_KEY_ED25519;
	else
		return -1;
	c->rotate_every_s = strtoull(rot, NULL, 10);
	c->keep_previous_for_s = strtoull(keep, NULL, 10);
	c->deliver_to = deliver[n_keys];
	for (char *s2 = NULL, *a = to ? strtok_r(to, ",", &s2) : NULL; a;
	     a = strtok_r(NULL, ",", &s2)) {
		size_t i;

		for (i = 0; i < n_agents; i++)
			if (strcmp(agents[i].name, a) == 0)
				break;
		if (i == n_agents)
			return -1; /* agents first */
		c->deliver_to[c->n_deliver_to++] = i;
	}
	n_keys++;
	return 0;
}

static int open_keys(const char *state, const char *run, uint64_t lead, uint64_t now,
		     struct mas_keys **k)
{
	struct keys_options o = {
		.state_dir = state,
		.runtime_dir = run,
		.keys = keys,
		.n_keys = n_keys,
		.agents = agents,
		.n_agents = n_agents,
		.lead_s = lead,
		.audit = audit_sink,
		.crash = crash_hook,
	};
	struct mas_error err = { 0 };
	int r = keys_open(&o, now, k, &err);

	if (r < 0)
		fprintf(stderr, "keys_open: %s: %s\n", strerror(-r), err.msg);
	return r;
}

/* ---- check: the on-disk truth agrees with itself ---- */

static bool dir_has_only(const char *dir, char **names, size_t n)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	size_t seen = 0;
	bool ok = true;

	if (!d)
		return n == 0;
	while ((de = readdir(d))) {
		bool known = false;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		for (size_t i = 0; i < n; i++)
			known |= strcmp(names[i], de->d_name) == 0;
		if (!known) {
			printf("unexpected file %s/%s\n", dir, de->d_name);
			ok = false;
		}
		seen++;
	}
	closedir(d);
	if (seen != n) {
		printf("%s: %zu entries, expected %zu\n", dir, seen, n);
		ok = false;
	}
	return ok;
}

static int cmd_check(struct mas_keys *k, const char *state, const char *run)
{
	char *names[MAX_KEYS * 600];
	size_t nn = 0;
	bool ok = true;

	for (size_t i = 0; i < n_keys; i++) {
		struct keys_version_info *v;
		char dir[2048], *expect[300], path0[PATH_MAX];
		size_t n, ne = 0;

		if (keys_versions(k, keys[i].name, &v, &n) < 0)
			return 1;
		printf("%s", keys[i].name);
		snprintf(dir, sizeof(dir), "%s/keys/%s", state, keys[i].name);
		snprintf(path0, sizeof(path0), "%s/state", dir);
		if (n > 0 || access(path0, F_OK) == 0)
			expect[ne++] = strdup(
				"state"); /* no state yet: the first version never committed */
		for (size_t j = 0; j < n; j++) {
			char *s;
			struct stat st;
			char path[PATH_MAX];

			printf(" %s=%s", keys_state_name(v[j].state), v[j].kid);
			if (asprintf(&s, "%s.secret", v[j].kid) < 0)
				return 1;
			expect[ne++] = s;
			snprintf(path, sizeof(path), "%s/%s", dir, s);
			if (stat(path, &st) < 0 || st.st_size != 32 ||
			    (st.st_mode & 07777) != 0600) {
				printf("\nsecret %s missing or wrong\n", path);
				ok = false;
			}
		}
		printf("\n");
		ok &= dir_has_only(dir, expect, ne);
		for (size_t j = 0; j < ne; j++)
			free(expect[j]);
		free(v);
	}
	for (size_t a = 0; a < n_agents; a++) {
		char dir[2048], path[PATH_MAX], *idx = NULL;
		size_t live = 0, len;
		bool delivered = false;

		nn = 0;
		for (size_t i = 0; i < n_keys; i++) {
			struct keys_version_info *v;
			size_t n;
			bool to = false, active = false;

			for (size_t j = 0; j < keys[i].n_deliver_to; j++)
				to |= keys[i].deliver_to[j] == a;
			if (!to)
				continue;
			delivered = true;
			keys_versions(k, keys[i].name, &v, &n);
			for (size_t j = 0; j < n; j++) {
				if (asprintf(&names[nn++], "%s.%s.key", keys[i].name, v[j].kid) < 0)
					return 1;
				if (keys[i].type == MAS_KEY_ED25519 &&
				    asprintf(&names[nn++], "%s.%s.pub", keys[i].name, v[j].kid) < 0)
					return 1;
				active |= v[j].state == KEYS_ACTIVE;
				live++;
			}
			if (active && asprintf(&names[nn++], "%s.current", keys[i].name) < 0)
				return 1;
			free(v);
		}
		snprintf(dir, sizeof(dir), "%s/keys/%s", run, agents[a].name);
		if (!delivered) {
			if (access(dir, F_OK) == 0) {
				printf("agent %s has a directory but no keys\n", agents[a].name);
				ok = false;
			}
			continue;
		}
		names[nn++] = strdup("index.json");
		ok &= dir_has_only(dir, names, nn);
		snprintf(path, sizeof(path), "%s/index.json", dir);
		if (fileio_read_all(path, 1 << 20, &idx, &len) == 0) {
			size_t c = 0;

			for (char *p = idx; (p = strstr(p, "\"kid\":")); p++)
				c++;
			if (c != live) {
				printf("index.json of %s lists %zu versions, %zu live\n",
				       agents[a].name, c, live);
				ok = false;
			}
			free(idx);
		} else {
			ok = false;
		}
		for (size_t j = 0; j < nn; j++)
			free(names[j]);
	}
	/* the world-readable public keys of Ed25519 keyrings: exactly the live versions */
	{
		char dir[2048];
		bool any = false;

		nn = 0;
		for (size_t i = 0; i < n_keys; i++) {
			struct keys_version_info *v;
			size_t n;

			if (keys[i].type != MAS_KEY_ED25519)
				continue;
			any = true;
			keys_versions(k, keys[i].name, &v, &n);
			for (size_t j = 0; j < n; j++)
				if (asprintf(&names[nn++], "%s.%s.pub", keys[i].name, v[j].kid) < 0)
					return 1;
			free(v);
		}
		snprintf(dir, sizeof(dir), "%s/keys/.public", run);
		if (any) {
			names[nn++] = strdup("index.json");
			ok &= dir_has_only(dir, names, nn);
		} else if (access(dir, F_OK) == 0) {
			printf(".public exists without Ed25519 keys\n");
			ok = false;
		}
		for (size_t j = 0; j < nn; j++)
			free(names[j]);
	}
	printf("%s\n", ok ? "consistent" : "INCONSISTENT");
	return ok ? 0 : 1;
}

/* ---- JWT HS256 ---- */

static char *b64url(const unsigned char *in, size_t n)
{
	char *out = calloc(1, 4 * ((n + 2) / 3) + 1);
	int len;

	if (!out)
		return NULL;
	len = EVP_EncodeBlock((unsigned char *)out, in, (int)n);
	for (int i = 0; i < len; i++)
		out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	while (len > 0 && out[len - 1] == '=')
		out[--len] = '\0';
	return out;
}

static int b64url_dec(const char *in, size_t n, unsigned char *out, size_t cap, size_t *ret)
{
	char buf[4096] = { 0 };
	size_t m = 0;
	int len;

	if (n + 4 > sizeof(buf) || (n + 3) / 4 * 3 > cap)
		return -1;
	for (size_t i = 0; i < n; i++)
		buf[m++] = in[i] == '-' ? '+' : in[i] == '_' ? '/' : in[i];
	while (m % 4)
		buf[m++] = '=';
	len = EVP_DecodeBlock(out, (unsigned char *)buf, (int)m);
	if (len < 0)
		return -1;
	while (m > 0 && buf[m - 1] == '=') {
		len--;
		m--;
	}
	*ret = (size_t)len;
	return 0;
}

/* The delivered key: base64 of the 32-byte secret. */
static int load_key(const char *path, unsigned char *key)
{
	char *b = NULL;
	size_t len, n;
	int r;

	r = fileio_read_all(path, 1024, &b, &len);
	if (r < 0) {
		fprintf(stderr, "%s: %s\n", path, strerror(-r));
		return r;
	}
	r = len == 44 && b64url_dec(b, 44, key, 48, &n) == 0 && n == 32 ? 0 : -EINVAL;
	OPENSSL_clear_free(b, len);
	return r;
}

static char *hs256(const unsigned char *key, const char *msg)
{
	unsigned char mac[32];
	unsigned len = 0;

	if (!HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, strlen(msg), mac, &len))
		return NULL;
	return b64url(mac, len);
}

static int cmd_jwt_sign(const char *dir, const char *name, uint64_t now)
{
	char link[PATH_MAX], target[256], path[PATH_MAX], kid[KEYS_KID_LEN + 1], hdr[128], pl[128],
		*h, *p, *msg, *sig;
	unsigned char key[48];
	ssize_t n;
	size_t nl = strlen(name);

	snprintf(link, sizeof(link), "%s/%s.current", dir, name);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return 1;
	target[n] = '\0';
	if ((size_t)n != nl + 1 + KEYS_KID_LEN + 4)
		return 1;
	memcpy(kid, target + nl + 1, KEYS_KID_LEN);
	kid[KEYS_KID_LEN] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, target);
	if (load_key(path, key) < 0)
		return 1;
	snprintf(hdr, sizeof(hdr), "{\"alg\":\"HS256\",\"typ\":\"JWT\",\"kid\":\"%s\"}", kid);
	snprintf(pl, sizeof(pl), "{\"sub\":\"copywriter\",\"iat\":%" PRIu64 ",\"exp\":%" PRIu64 "}",
		 now, now + 1800);
	h = b64url((unsigned char *)hdr, strlen(hdr));
	p = b64url((unsigned char *)pl, strlen(pl));
	if (!h || !p || asprintf(&msg, "%s.%s", h, p) < 0)
		return 1;
	sig = hs256(key, msg);
	OPENSSL_cleanse(key, sizeof(key));
	if (!sig)
		return 1;
	printf("%s.%s\n", msg, sig);
	free(h);
	free(p);
	free(msg);
	free(sig);
	return 0;
}

static int cmd_jwt_verify(const char *dir, const char *name, const char *tok)
{
	const char *d1 = strchr(tok, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL, *k;
	unsigned char hdr[512], key[48];
	char kid[KEYS_KID_LEN + 1], path[PATH_MAX], *msg, *sig;
	size_t hl;
	int ok;

	if (!d1 || !d2 || b64url_dec(tok, (size_t)(d1 - tok), hdr, sizeof(hdr) - 1, &hl) < 0) {
		printf("malformed token\n");
		return 1;
	}
	hdr[hl] = '\0';
	if (!strstr((char *)hdr, "\"alg\":\"HS256\"")) {
		printf("algorithm refused\n");
		return 1;
	}
	k = strstr((char *)hdr, "\"kid\":\"");
	if (!k || strlen(k + 7) < KEYS_KID_LEN + 1 || k[7 + KEYS_KID_LEN] != '"') {
		printf("no kid\n");
		return 1;
	}
	memcpy(kid, k + 7, KEYS_KID_LEN);
	kid[KEYS_KID_LEN] = '\0';
	for (int i = 0; i < KEYS_KID_LEN; i++)
		if (!strchr("0123456789abcdef", kid[i]))
			return 1;
	snprintf(path, sizeof(path), "%s/%s.%s.key", dir, name, kid);
	if (load_key(path, key) < 0) {
		printf("unknown kid %s (destroyed or never delivered)\n", kid);
		return 1;
	}
	msg = strndup(tok, (size_t)(d2 - tok));
	sig = msg ? hs256(key, msg) : NULL;
	OPENSSL_cleanse(key, sizeof(key));
	ok = sig && strlen(sig) == strlen(d2 + 1) && CRYPTO_memcmp(sig, d2 + 1, strlen(sig)) == 0;
	printf("%s kid %s\n", ok ? "valid" : "bad signature", kid);
	free(msg);
	free(sig);
	return ok ? 0 : 1;
}

static int drop_to(const char *as)
{
	unsigned uid, gid;

	if (!as)
		return 0;
	if (sscanf(as, "%u:%u", &uid, &gid) != 2)
		return -1;
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 || setresuid(uid, uid, uid) < 0)
		return -1;
	return 0;
}

int main(int argc, char **argv)
{
	const char *state = NULL, *run = NULL, *as = NULL;
	uint64_t lead = 0;
	struct mas_keys *k = NULL;
	int i, r;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) {
			state = argv[++i];
		} else if (strcmp(argv[i], "--runtime") == 0 && i + 1 < argc) {
			run = argv[++i];
		} else if (strcmp(argv[i], "--lead") == 0 && i + 1 < argc) {
			lead = strtoull(argv[++i], NULL, 10);
		} else if (strcmp(argv[i], "--as") == 0 && i + 1 < argc) {
			as = argv[++i];
		} else if (strcmp(argv[i], "--agent") == 0 && i + 1 < argc) {
			char *s = argv[++i], *colon = strchr(s, ':');

			if (n_agents == MAX_AGENTS)
				return usage();
			if (colon)
				*colon = '\0';
			agents[n_agents].name = s;
			agents[n_agents++].user = colon ? colon + 1 : NULL;
		} else if (strcmp(argv[i], "--key") == 0 && i + 1 < argc) {
			if (parse_key(argv[++i]) < 0)
				return usage();
		} else {
			break;
		}
	}
	if (i >= argc)
		return usage();
	argv += i;
	argc -= i;

	if (strcmp(argv[0], "read") == 0 || strcmp(argv[0], "listdir") == 0) {
		if (argc != 2 || drop_to(as) < 0)
			return usage();
		if (strcmp(argv[0], "read") == 0) {
			char *buf = NULL;
			size_t len;

			r = fileio_read_all(argv[1], 1 << 20, &buf, &len);
			if (buf)
				OPENSSL_clear_free(buf, len);
		} else {
			DIR *d = opendir(argv[1]);

			r = d ? 0 : -errno;
			if (d)
				closedir(d);
		}
		printf("%s\n", r == 0 ? "ok" : strerror(-r));
		return r == 0 ? 0 : r == -EACCES ? 3 : 1;
	}
	if (strcmp(argv[0], "jwt-sign") == 0 && argc == 4) {
		if (drop_to(as) < 0)
			return usage();
		return cmd_jwt_sign(argv[1], argv[2], strtoull(argv[3], NULL, 10));
	}
	if (strcmp(argv[0], "jwt-verify") == 0 && argc >= 4) {
		if (drop_to(as) < 0)
			return usage();
		return cmd_jwt_verify(argv[1], argv[2], argv[3]);
	}

	if (!state || !run || argc < 2)
		return usage();
	{
		uint64_t now = strtoull(argv[1], NULL, 10);

		if (strcmp(argv[0], "rotate") == 0) {
			if (argc < 3)
				return usage();
			now = strtoull(argv[2], NULL, 10);
		} else if (strcmp(argv[0], "churn") == 0) {
			if (argc != 4)
				return usage();
			now = strtoull(argv[2], NULL, 10);
		}
		if (open_keys(state, run, lead, now, &k) < 0)
			return 1;
		if (strcmp(argv[0], "tick") == 0) {
			r = keys_tick(k, now);
			printf("tick %d next %" PRIu64 "\n", r, keys_next_due(k, now));
			r = r < 0;
		} else if (strcmp(argv[0], "rotate") == 0) {
			unsigned flags = 0;

			if (argc > 3 && strcmp(argv[3], "immediate") == 0)
				flags = KEYS_ROTATE_IMMEDIATE;
			else if (argc > 3 && strcmp(argv[3], "revoke") == 0)
				flags = KEYS_ROTATE_REVOKE;
			r = keys_tick(k, now);
			if (r >= 0)
				r = keys_rotate(k, argv[1], now, flags);
			printf("rotate %s\n", r < 0 ? strerror(-r) : "ok");
			r = r < 0;
		} else if (strcmp(argv[0], "churn") == 0) {
			unsigned long n = strtoul(argv[3], NULL, 10);

			r = keys_tick(k, now);
			for (unsigned long j = 0; j < n && r >= 0; j++)
				r = keys_rotate(k, argv[1], now + j, KEYS_ROTATE_IMMEDIATE);
			r = r < 0;
		} else if (strcmp(argv[0], "list") == 0) {
			struct keys_list_entry *e;
			size_t n;

			r = keys_list(k, now, &e, &n);
			if (r == 0) {
				r = keys_cli_format(stdout, e, n, now,
						    argc > 2 && strcmp(argv[2], "json") == 0 ?
							    KEYS_FORMAT_JSON :
							    0);
				free(e);
			}
			r = r < 0;
		} else if (strcmp(argv[0], "check") == 0) {
			r = cmd_check(k, state, run);
		} else {
			r = usage();
		}
	}
	keys_close(k);
	return r;
}
