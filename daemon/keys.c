/* SPDX-License-Identifier: GPL-2.0-only */
/* Keyrings: versions, their schedule, their crash-safe state under STATE/keys and their delivery
 * to agents under RUNTIME/keys. docs/keys.md describes the layouts and the rollover timeline.
 *
 * Crash safety rests on one order for every change:
 *   1. new material is written to its own secret file (temp + fsync + rename + fsync dir);
 *   2. the ring's state file is replaced the same way: this rename is the commit point;
 *   3. "flush": deliveries are rebuilt from the committed state, secrets of versions committed as
 *      destroyed are overwritten and unlinked, audit records not yet marked as emitted are
 *      emitted, then the marks (and the removal of destroyed versions) are committed.
 * A kill before 2 leaves an orphaned secret file that keys_open() wipes (old state); a kill after
 * 2 leaves a committed state whose flush keys_open() redoes (new state). Flush is idempotent. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "fileio.h"
#include "keys.h"
#include "msgid.h"

#define STATE_MAGIC "masd-keys 1"
#define STATE_MAX_BYTES (256u << 10)
#define MAX_VERSIONS 256 /* e.g. hourly rotation kept for 7 days needs 169 */
#define MAX_STEPS 16 /* transitions per ring per tick: a guard, never reached in practice */
#define OVERDUE_GRACE_S 60
#define RETRY_S 60 /* a failed transition (disk full, audit sink down) is retried this often */
#define OVERDUE_REPEAT_S 3600
#define NAME_MAX_LEN 64
#define REASON_MAX 16
#define PUBLIC_DIR ".public"

#define AUD_DELIVERED 0x1 /* KEY_DELIVERED records emitted for every agent */
#define AUD_ACTIVATED 0x2 /* KEY_ROTATED record emitted */

struct key_version {
	uint32_t seq;
	char kid[KEYS_KID_LEN + 1];
	enum keys_state state;
	uint64_t created;
	uint64_t not_before;
	uint64_t not_after;
	unsigned audited; /* AUD_* */
	char reason[REASON_MAX];
	char prev_kid[KEYS_KID_LEN + 1]; /* the active version this one replaced; "-" */
	char fpr[KEYS_FPR_LEN + 1];
	bool has_pub;
	uint8_t pub[32];
};

struct key_ring {
	char name[NAME_MAX_LEN + 1];
	enum mas_key_type type;
	uint64_t rotate_every;
	uint64_t keep_previous;
	uint64_t lead;
	size_t *agents; /* indexes into mas_keys.agents */
	size_t n_agents;
	char dir[PATH_MAX];
	uint32_t next_seq;
	struct key_version *v;
	size_t n_v;
	uint64_t retry_at; /* after a failed transition: when to try again (not persisted) */
	uint64_t warned_at; /* last KEY_OVERDUE record, to repeat it at most hourly */
};

struct key_agent {
	char name[NAME_MAX_LEN + 1];
	char *user; /* NULL: root-only delivery */
	bool user_found;
	uid_t uid;
	gid_t gid;
};

struct mas_keys {
	char state_root[PATH_MAX];
	char run_root[PATH_MAX];
	struct key_ring *rings;
	size_t n_rings;
	struct key_agent *agents;
	size_t n_agents;
	keys_audit_fn audit;
	void *audit_ud;
	keys_crash_fn crash;
	void *crash_ud;
	keys_before_activate_fn before_activate;
	void *before_activate_ud;
	uint64_t default_lead;
};

static const char *const state_names[] = {
	[KEYS_PENDING] = "pending",
	[KEYS_ACTIVE] = "active",
	[KEYS_RETIRING] = "retiring",
	[KEYS_DESTROYED] = "destroyed",
};

const char *keys_type_name(enum mas_key_type t)
{
	switch (t) {
	case MAS_KEY_HS256:
		return "hs256";
	case MAS_KEY_AES256GCM:
		return "aes-256-gcm";
	case MAS_KEY_ED25519:
		return "ed25519";
	}
	return "?";
}

const char *keys_state_name(enum keys_state s)
{
	if ((unsigned)s < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[s];
	return "?";
}

static int type_from_name(const char *s, enum mas_key_type *ret)
{
	for (int t = MAS_KEY_HS256; t <= MAS_KEY_ED25519; t++)
		if (strcmp(s, keys_type_name(t)) == 0) {
			*ret = t;
			return 0;
		}
	return -EINVAL;
}

static void crash_point(struct mas_keys *k, const char *step)
{
	if (k->crash)
		k->crash(k->crash_ud, step);
}

/* Names become path components: keep them to a safe alphabet. Ring names also may not contain
 * '.', which separates name and kid in delivered file names. */
static bool name_ok(const char *s, bool allow_dot)
{
	size_t n = s ? strlen(s) : 0;

	if (n == 0 || n > NAME_MAX_LEN || s[0] == '.' || s[0] == '-')
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '_' || c == '-' || c == '@' || (allow_dot && c == '.')))
			return false;
	}
	return true;
}

static bool kid_ok(const char *s)
{
	if (strlen(s) != KEYS_KID_LEN)
		return false;
	for (const char *p = s; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[b[i] >> 4];
		out[2 * i + 1] = digits[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	if (strlen(s) != 2 * n)
		return -EINVAL;
	for (size_t i = 0; i < 2 * n; i++) {
		int v;

		if (s[i] >= '0' && s[i] <= '9')
			v = s[i] - '0';
		else if (s[i] >= 'a' && s[i] <= 'f')
			v = s[i] - 'a' + 10;
		else
			return -EINVAL;
		if (i % 2 == 0)
			out[i / 2] = (uint8_t)(v << 4);
		else
			out[i / 2] |= (uint8_t)v;
	}
	return 0;
}

static size_t material_len(enum mas_key_type t)
{
	(void)t;
	return 32; /* HS256: 256 bits (RFC 7518 asks for >= the hash size); AES-256; Ed25519 seed */
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
	return a + b < a ? KEYS_NEVER - 1 : a + b;
}

/* ---- files ---- */

/* Overwrite a file's blocks with zeros, then unlink it. On a copy-on-write or flash filesystem
 * the old blocks may survive; docs/keys.md says so. ENOENT is success. */
static int wipe_file(const char *path)
{
	static const uint8_t zeros[4096];
	struct stat st;
	int fd, r = 0;

	fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0 && errno == EACCES) {
		/* a 0400 file and no CAP_DAC_OVERRIDE (unit tests): make it writable first */
		int ro = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);

		if (ro >= 0) {
			if (fchmod(ro, 0600) == 0)
				fd = open(path, O_WRONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
			close(ro);
		}
		if (fd < 0)
			errno = EACCES;
	}
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		if (errno != ELOOP)
			return -errno;
		/* a symlink: nothing of ours to overwrite */
		return unlink(path) < 0 && errno != ENOENT ? -errno : 0;
	}
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
		off_t left = st.st_size;

		while (left > 0) {
			size_t n = left > (off_t)sizeof(zeros) ? sizeof(zeros) : (size_t)left;
			ssize_t w = write(fd, zeros, n);

			if (w < 0) {
				if (errno == EINTR)
					continue;
				r = -errno;
				break;
			}
			left -= w;
		}
		if (r == 0 && fsync(fd) < 0)
			r = -errno;
	}
	close(fd);
	if (unlink(path) < 0 && errno != ENOENT && r == 0)
		r = -errno;
	return r;
}

static bool is_temp_name(const char *n)
{
	return strstr(n, ".tmp.") != NULL;
}

static int path_join(char *out, size_t size, const char *a, const char *b)
{
	if (snprintf(out, size, "%s/%s", a, b) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

static int secret_path(const struct key_ring *ring, const char *kid, char *out, size_t size)
{
	if (snprintf(out, size, "%s/%s.secret", ring->dir, kid) >= (int)size)
		return -ENAMETOOLONG;
	return 0;
}

static int read_secret(const struct key_ring *ring, const char *kid, uint8_t *out)
{
	char path[PATH_MAX], *buf = NULL;
	size_t len = 0, want = material_len(ring->type);
	int r;

	r = secret_path(ring, kid, path, sizeof(path));
	if (r < 0)
		return r;
	r = fileio_read_all(path, KEYS_SECRET_MAX, &buf, &len);
	if (r < 0)
		return r == -EFBIG ? -EBADMSG : r;
	if (len != want)
		r = -EBADMSG;
	else
		memcpy(out, buf, want);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return r;
}

/* ---- state file ---- */

static struct key_version *find_state(struct key_ring *ring, enum keys_state s)
{
	for (size_t i = 0; i < ring->n_v; i++)
		if (ring->v[i].state == s)
			return &ring->v[i];
	return NULL;
}

static const struct key_version *cfind_state(const struct key_ring *ring, enum keys_state s)
{
	return find_state((struct key_ring *)ring, s);
}

static int state_path(const struct key_ring *ring, char *out, size_t size)
{
	return path_join(out, size, ring->dir, "state");
}

static int ring_commit(struct mas_keys *k, struct key_ring *ring)
{
	char path[PATH_MAX], *buf = NULL;
	size_t size = 0;
	FILE *f;
	int r;

	r = state_path(ring, path, sizeof(path));
	if (r < 0)
		return r;
	f = open_memstream(&buf, &size);
	if (!f)
		return -ENOMEM;
	fprintf(f, "%s\nname %s\ntype %s\nnext_seq %" PRIu32 "\n", STATE_MAGIC, ring->name,
		keys_type_name(ring->type), ring->next_seq);
	for (size_t i = 0; i < ring->n_v; i++) {
		const struct key_version *v = &ring->v[i];
		char pub[65] = "-";

		if (v->has_pub)
			hex(v->pub, 32, pub);
		fprintf(f,
			"v %" PRIu32 " %s %s %" PRIu64 " %" PRIu64 " %" PRIu64 " %u %s %s %s %s\n",
			v->seq, v->kid, keys_state_name(v->state), v->created, v->not_before,
			v->not_after, v->audited, v->reason, v->prev_kid, v->fpr, pub);
	}
	if (fclose(f) != 0) {
		free(buf);
		return -ENOMEM;
	}
	r = fileio_write_atomic(path, buf, size, 0600, (uid_t)-1, (gid_t)-1);
	free(buf);
	(void)k;
	return r;
}

static int parse_u64(const char *s, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -EINVAL;
	*ret = v;
	return 0;
}

#define MAX_TOKENS 13

static size_t tokenize(char *line, char **tok)
{
	size_t n = 0;
	char *save = NULL;

	for (char *t = strtok_r(line, " ", &save); t; t = strtok_r(NULL, " ", &save)) {
		if (n == MAX_TOKENS)
			return MAX_TOKENS + 1;
		tok[n++] = t;
	}
	return n;
}

/* Error text may be cut at MAS_ERR_MAX: vsnprintf keeps the compiler's truncation check quiet. */
__attribute__((format(printf, 2, 3))) static void err_set(struct mas_error *err, const char *fmt,
							  ...)
{
	va_list ap;

	if (!err)
		return;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
	va_end(ap);
}

static int state_error(struct mas_error *err, const char *path, unsigned line, const char *what)
{
	if (err) {
		err_set(err, "%s:%u: %s", path, line, what);
		err->line = line;
		err->col = 0;
	}
	return -EBADMSG;
}

static int parse_version(char **tok, size_t n, struct key_version *v, const char **why)
{
	uint64_t seq, audited;

	memset(v, 0, sizeof(*v));
	if (n != 12) {
		*why = "version line: expected 12 fields";
		return -EINVAL;
	}
	if (parse_u64(tok[1], &seq) < 0 || seq == 0 || seq > UINT32_MAX) {
		*why = "version line: bad sequence number";
		return -EINVAL;
	}
	v->seq = (uint32_t)seq;
	if (!kid_ok(tok[2])) {
		*why = "version line: bad kid (16 lowercase hex digits expected)";
		return -EINVAL;
	}
	strcpy(v->kid, tok[2]);
	v->state = (enum keys_state) - 1;
	for (int s = KEYS_PENDING; s <= KEYS_DESTROYED; s++)
		if (strcmp(tok[3], state_names[s]) == 0)
			v->state = s;
	if ((int)v->state < 0) {
		*why = "version line: unknown state";
		return -EINVAL;
	}
	if (parse_u64(tok[4], &v->created) < 0 || parse_u64(tok[5], &v->not_before) < 0 ||
	    parse_u64(tok[6], &v->not_after) < 0 || parse_u64(tok[7], &audited) < 0 ||
	    audited > (AUD_DELIVERED | AUD_ACTIVATED)) {
		*why = "version line: bad number";
		return -EINVAL;
	}
	v->audited = (unsigned)audited;
	if (strlen(tok[8]) >= REASON_MAX || !name_ok(tok[8], false)) {
		*why = "version line: bad reason";
		return -EINVAL;
	}
	strcpy(v->reason, tok[8]);
	if (strcmp(tok[9], "-") != 0 && !kid_ok(tok[9])) {
		*why = "version line: bad previous kid";
		return -EINVAL;
	}
	strcpy(v->prev_kid, tok[9]);
	if (strlen(tok[10]) != KEYS_FPR_LEN) {
		*why = "version line: bad fingerprint";
		return -EINVAL;
	}
	{
		uint8_t tmp[KEYS_FPR_LEN / 2];

		if (unhex(tok[10], tmp, sizeof(tmp)) < 0) {
			*why = "version line: bad fingerprint";
			return -EINVAL;
		}
	}
	strcpy(v->fpr, tok[10]);
	if (strcmp(tok[11], "-") != 0) {
		if (unhex(tok[11], v->pub, 32) < 0) {
			*why = "version line: bad public key";
			return -EINVAL;
		}
		v->has_pub = true;
	}
	return 0;
}

/* Load and check a ring's state. -ENOENT: no state yet. -EBADMSG: malformed, err says where. */
static int ring_load(struct key_ring *ring, struct mas_error *err)
{
	char path[PATH_MAX], *buf = NULL, *save = NULL, *line;
	struct key_version *vs = NULL;
	size_t n_v = 0, len = 0;
	unsigned lineno = 0;
	uint64_t next_seq = 0;
	bool have_name = false, have_type = false;
	int r;

	r = state_path(ring, path, sizeof(path));
	if (r < 0)
		return r;
	r = fileio_read_all(path, STATE_MAX_BYTES, &buf, &len);
	if (r == -EFBIG)
		return state_error(err, path, 0, "state file too large");
	if (r < 0)
		return r;
	if (strlen(buf) != len) {
		r = state_error(err, path, 0, "NUL byte in state file");
		goto out;
	}
	if (len == 0 || buf[len - 1] != '\n') {
		r = state_error(err, path, 0, "truncated state file (no final newline)");
		goto out;
	}
	vs = calloc(MAX_VERSIONS, sizeof(*vs));
	if (!vs) {
		r = -ENOMEM;
		goto out;
	}
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tok[MAX_TOKENS];
		const char *why = NULL;
		size_t n;

		lineno++;
		if (lineno == 1) {
			if (strcmp(line, STATE_MAGIC) != 0) {
				r = state_error(err, path, 1,
						"not a masd key state file (version 1)");
				goto out;
			}
			continue;
		}
		n = tokenize(line, tok);
		if (n == 0 || n > MAX_TOKENS) {
			r = state_error(err, path, lineno, "empty or overlong line");
			goto out;
		}
		if (strcmp(tok[0], "name") == 0 && n == 2 && !have_name) {
			if (strcmp(tok[1], ring->name) != 0) {
				r = state_error(err, path, lineno, "state belongs to another key");
				goto out;
			}
			have_name = true;
		} else if (strcmp(tok[0], "type") == 0 && n == 2 && !have_type) {
			enum mas_key_type t;

			if (type_from_name(tok[1], &t) < 0) {
				r = state_error(err, path, lineno, "unknown key type");
				goto out;
			}
			if (t != ring->type) {
				r = state_error(err, path, lineno,
						"key type differs from the policy's; a key's type "
						"cannot change: give the new key a new name");
				goto out;
			}
			have_type = true;
		} else if (strcmp(tok[0], "next_seq") == 0 && n == 2 && !next_seq) {
			if (parse_u64(tok[1], &next_seq) < 0 || next_seq == 0 ||
			    next_seq > UINT32_MAX) {
				r = state_error(err, path, lineno, "bad next_seq");
				goto out;
			}
		} else if (strcmp(tok[0], "v") == 0) {
			if (n_v == MAX_VERSIONS) {
				r = state_error(err, path, lineno, "too many versions");
				goto out;
			}
			if (parse_version(tok, n, &vs[n_v], &why) < 0) {
				r = state_error(err, path, lineno, why);
				goto out;
			}
			n_v++;
		} else {
			r = state_error(err, path, lineno, "unknown or repeated line");
			goto out;
		}
	}
	if (!have_name || !have_type || !next_seq) {
		r = state_error(err, path, lineno, "missing name, type or next_seq line");
		goto out;
	}
	/* invariants: unique kids and sequence numbers below next_seq, one active, one pending */
	{
		unsigned n_active = 0, n_pending = 0;

		for (size_t i = 0; i < n_v; i++) {
			if (vs[i].seq >= next_seq) {
				r = state_error(err, path, 0, "version seq >= next_seq");
				goto out;
			}
			for (size_t j = 0; j < i; j++)
				if (vs[j].seq >= vs[i].seq || strcmp(vs[j].kid, vs[i].kid) == 0) {
					r = state_error(err, path, 0,
							"versions out of order or kid repeated");
					goto out;
				}
			n_active += vs[i].state == KEYS_ACTIVE;
			n_pending += vs[i].state == KEYS_PENDING;
			if ((ring->type == MAS_KEY_ED25519) != vs[i].has_pub) {
				r = state_error(err, path, 0, "public key present iff ed25519");
				goto out;
			}
		}
		if (n_active > 1 || n_pending > 1) {
			r = state_error(err, path, 0, "more than one active or pending version");
			goto out;
		}
	}
	free(ring->v);
	ring->v = vs;
	ring->n_v = n_v;
	ring->next_seq = (uint32_t)next_seq;
	vs = NULL;
	r = 0;
out:
	free(vs);
	free(buf);
	return r;
}

/* ---- material ---- */

static int fingerprint(const struct key_ring *ring, const uint8_t *m, const uint8_t *pub, char *out)
{
	static const char label[] = "masd key fingerprint v1";
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned md_len = 0;

	if (ring->type == MAS_KEY_ED25519) {
		/* public information: anyone holding the public key can check it */
		SHA256(pub, 32, md);
	} else if (!HMAC(EVP_sha256(), m, (int)material_len(ring->type),
			 (const unsigned char *)label, sizeof(label) - 1, md, &md_len)) {
		return -EIO;
	}
	hex(md, KEYS_FPR_LEN / 2, out);
	OPENSSL_cleanse(md, sizeof(md));
	return 0;
}

static int generate(const struct key_ring *ring, uint8_t *m, uint8_t *pub, char *kid)
{
	uint8_t id[SHA256_DIGEST_LENGTH];

	if (ring->type == MAS_KEY_ED25519) {
		EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(EVP_PKEY_ED25519, NULL);
		EVP_PKEY *pk = NULL;
		size_t len = 32, plen = 32;
		int ok;

		if (!c)
			return -ENOMEM;
		ok = EVP_PKEY_keygen_init(c) > 0 && EVP_PKEY_keygen(c, &pk) > 0 &&
		     EVP_PKEY_get_raw_private_key(pk, m, &len) > 0 && len == 32 &&
		     EVP_PKEY_get_raw_public_key(pk, pub, &plen) > 0 && plen == 32;
		EVP_PKEY_free(pk);
		EVP_PKEY_CTX_free(c);
		if (!ok)
			return -EIO;
		SHA256(pub, 32, id); /* kid from public information */
	} else {
		uint8_t rnd[16];

		if (RAND_priv_bytes(m, (int)material_len(ring->type)) != 1 ||
		    RAND_bytes(rnd, sizeof(rnd)) != 1)
			return -EIO;
		SHA256(rnd, sizeof(rnd), id); /* kid independent of the secret */
	}
	hex(id, KEYS_KID_LEN / 2, kid);
	return 0;
}

/* ---- delivery ---- */

static int encode_delivery(const struct key_ring *ring, const uint8_t *m, bool public_only,
			   char **ret, size_t *ret_len)
{
	if (ring->type != MAS_KEY_ED25519) {
		char *b = OPENSSL_zalloc(4 * ((KEYS_SECRET_MAX + 2) / 3) + 1); /* clear_free'd */

		if (!b)
			return -ENOMEM;
		*ret_len = (size_t)EVP_EncodeBlock((unsigned char *)b, m,
						   (int)material_len(ring->type));
		*ret = b;
		return 0;
	} else {
		EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, m, 32);
		BIO *bio = BIO_new(BIO_s_secmem());
		char *data, *b;
		long n;
		int ok;

		if (!pk || !bio) {
			EVP_PKEY_free(pk);
			BIO_free(bio);
			return -ENOMEM;
		}
		ok = public_only ? PEM_write_bio_PUBKEY(bio, pk) :
				   PEM_write_bio_PrivateKey(bio, pk, NULL, NULL, 0, NULL, NULL);
		EVP_PKEY_free(pk);
		n = BIO_get_mem_data(bio, &data);
		if (!ok || n <= 0 || !(b = OPENSSL_zalloc((size_t)n + 1))) {
			BIO_free(bio);
			return -EIO;
		}
		memcpy(b, data, (size_t)n);
		BIO_free(bio);
		*ret = b;
		*ret_len = (size_t)n;
		return 0;
	}
}

static bool ring_delivers_to(const struct key_ring *ring, size_t agent)
{
	for (size_t i = 0; i < ring->n_agents; i++)
		if (ring->agents[i] == agent)
			return true;
	return false;
}

static bool version_live(const struct key_version *v)
{
	return v->state != KEYS_DESTROYED;
}

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static int build_index(struct mas_keys *k, size_t a, char **ret, size_t *ret_len)
{
	FILE *f = open_memstream(ret, ret_len);
	bool first_ring = true;

	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"agent\":");
	json_str(f, k->agents[a].name);
	fprintf(f, ",\"keys\":{");
	for (size_t i = 0; i < k->n_rings; i++) {
		const struct key_ring *ring = &k->rings[i];
		const struct key_version *act = cfind_state(ring, KEYS_ACTIVE);
		bool first = true;

		if (!ring_delivers_to(ring, a))
			continue;
		fprintf(f, "%s\n", first_ring ? "" : ",");
		first_ring = false;
		json_str(f, ring->name);
		fprintf(f, ":{\"type\":\"%s\",\"current\":", keys_type_name(ring->type));
		if (act)
			json_str(f, act->kid);
		else
			fprintf(f, "null");
		fprintf(f, ",\"versions\":[");
		for (size_t j = 0; j < ring->n_v; j++) {
			const struct key_version *v = &ring->v[j];

			if (!version_live(v))
				continue;
			fprintf(f,
				"%s{\"kid\":\"%s\",\"state\":\"%s\",\"not_before\":%" PRIu64
				",\"not_after\":",
				first ? "" : ",", v->kid, keys_state_name(v->state), v->not_before);
			first = false;
			if (v->not_after)
				fprintf(f, "%" PRIu64, v->not_after);
			else
				fprintf(f, "null");
			fprintf(f, ",\"file\":\"%s.%s.key\"", ring->name, v->kid);
			if (v->has_pub)
				fprintf(f, ",\"public_file\":\"%s.%s.pub\"", ring->name, v->kid);
			fprintf(f, ",\"fingerprint\":\"%s\"}", v->fpr);
		}
		fprintf(f, "]}");
	}
	fprintf(f, "}}\n");
	return fclose(f) == 0 ? 0 : -ENOMEM;
}

static int emit(struct mas_keys *k, const char *id, int prio, const char *msg,
		const struct audit_field *f, size_t n);

/* Write a delivered file unless it is already there; fix its owner and mode either way. */
static int deliver_file(struct mas_keys *k, const struct key_agent *ag, const char *path,
			const char *data, size_t len, bool replace, bool *wrote)
{
	struct stat st;

	if (!replace && lstat(path, &st) == 0 && S_ISREG(st.st_mode)) {
		if (st.st_uid != ag->uid || st.st_gid != ag->gid || (st.st_mode & 07777) != 0400) {
			/* mode first: once the file is the agent's, changing it needs CAP_FOWNER */
			if (chmod(path, 0400) < 0 || lchown(path, ag->uid, ag->gid) < 0)
				return -errno;
		}
		return 0;
	}
	int r;

	if (!data)
		return -EINVAL;
	*wrote = true;
	r = fileio_write_atomic(path, data, len, 0400, ag->uid, ag->gid);
	if (r == 0)
		crash_point(k, "deliver:file");
	return r;
}

static bool is_regular(const char *path)
{
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static int deliver_version(struct mas_keys *k, const struct key_ring *ring,
			   const struct key_version *v, const struct key_agent *ag, const char *dir,
			   bool *wrote)
{
	char path[PATH_MAX], ppath[PATH_MAX];
	uint8_t m[KEYS_SECRET_MAX];
	char *data = NULL;
	size_t len = 0;
	bool need_key, need_pub = false;
	int r;

	if (snprintf(path, sizeof(path), "%s/%s.%s.key", dir, ring->name, v->kid) >=
		    (int)sizeof(path) ||
	    snprintf(ppath, sizeof(ppath), "%s/%s.%s.pub", dir, ring->name, v->kid) >=
		    (int)sizeof(ppath))
		return -ENAMETOOLONG;
	need_key = !is_regular(path);
	if (v->has_pub)
		need_pub = !is_regular(ppath);
	if (!need_key && !need_pub)
		return deliver_file(k, ag, path, NULL, 0, false, wrote) ?:
			       (v->has_pub ? deliver_file(k, ag, ppath, NULL, 0, false, wrote) : 0);
	r = read_secret(ring, v->kid, m);
	if (r < 0)
		return r;
	r = encode_delivery(ring, m, false, &data, &len);
	if (r == 0) {
		r = deliver_file(k, ag, path, data, len, false, wrote);
		OPENSSL_clear_free(data, len);
		data = NULL;
	}
	if (r == 0 && need_key && (v->audited & AUD_DELIVERED)) {
		/* delivered again (the runtime dir is a tmpfs: after a reboot, or after tampering) */
		struct audit_field f[] = {
			{ "MAS_KEY_NAME", ring->name },
			{ "MAS_KEY_TYPE", keys_type_name(ring->type) },
			{ "MAS_KEY_OLD_KID", "-" },
			{ "MAS_KEY_NEW_KID", v->kid },
			{ "MAS_KEY_FINGERPRINT", v->fpr },
			{ "MAS_KEY_STATE", keys_state_name(v->state) },
			{ "MAS_AGENT", ag->name },
			{ "MAS_KEY_OWNER", ag->user_found ? ag->user : "root" },
			{ "MAS_KEY_REASON", "redelivery" },
		};
		char msg[256];

		snprintf(msg, sizeof(msg), "Key %s version %s delivered again to %s", ring->name,
			 v->kid, ag->name);
		/* informational: a failure to record it must not block the delivery itself */
		(void)emit(k, MAS_MSGID_KEY_DELIVERED, LOG_NOTICE, msg, f, 9);
	}
	if (r == 0 && v->has_pub) {
		r = encode_delivery(ring, m, true, &data, &len);
		if (r == 0) {
			r = deliver_file(k, ag, ppath, data, len, false, wrote);
			OPENSSL_clear_free(data, len);
		}
	}
	OPENSSL_cleanse(m, sizeof(m));
	return r;
}

static int deliver_current(struct mas_keys *k, const struct key_ring *ring,
			   const struct key_version *act, const struct key_agent *ag,
			   const char *dir)
{
	char link[PATH_MAX], tmp[PATH_MAX], target[NAME_MAX_LEN + KEYS_KID_LEN + 8], cur[256];
	ssize_t n;

	if (snprintf(link, sizeof(link), "%s/%s.current", dir, ring->name) >= (int)sizeof(link))
		return -ENAMETOOLONG;
	if (!act)
		return wipe_file(link);
	snprintf(target, sizeof(target), "%s.%s.key", ring->name, act->kid);
	n = readlink(link, cur, sizeof(cur) - 1);
	if (n >= 0) {
		cur[n] = '\0';
		if (strcmp(cur, target) == 0)
			return lchown(link, ag->uid, ag->gid) < 0 ? -errno : 0;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.tmp.%d", link, (int)getpid()) >= (int)sizeof(tmp))
		return -ENAMETOOLONG;
	unlink(tmp);
	if (symlink(target, tmp) < 0)
		return -errno;
	if (lchown(tmp, ag->uid, ag->gid) < 0 || rename(tmp, link) < 0) {
		int r = -errno;

		unlink(tmp);
		return r;
	}
	crash_point(k, "deliver:link");
	return 0;
}

/* Is name one of the files the current state delivers to agent a? */
static bool delivered_name(struct mas_keys *k, size_t a, const char *name)
{
	if (strcmp(name, "index.json") == 0)
		return true;
	for (size_t i = 0; i < k->n_rings; i++) {
		const struct key_ring *ring = &k->rings[i];
		size_t nl = strlen(ring->name);
		const char *rest;

		if (!ring_delivers_to(ring, a) || strncmp(name, ring->name, nl) != 0 ||
		    name[nl] != '.')
			continue;
		rest = name + nl + 1;
		if (strcmp(rest, "current") == 0)
			return true;
		for (size_t j = 0; j < ring->n_v; j++) {
			const struct key_version *v = &ring->v[j];

			if (!version_live(v) || strncmp(rest, v->kid, KEYS_KID_LEN) != 0)
				continue;
			if (strcmp(rest + KEYS_KID_LEN, ".key") == 0 ||
			    (v->has_pub && strcmp(rest + KEYS_KID_LEN, ".pub") == 0))
				return true;
		}
	}
	return false;
}

static int remove_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (path_join(path, sizeof(path), dir, de->d_name) < 0)
			continue;
		if (de->d_type == DT_DIR)
			r = remove_tree(path) ?: r;
		else
			r = wipe_file(path) ?: r;
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT)
		r = r ?: -errno;
	return r;
}

/* Make RUNTIME/keys/AGENT match the committed state: every live version of every ring delivered
 * to the agent, NAME.current, index.json; anything else is wiped. The directory is root-owned
 * with the agent's group and mode 0750, so the agent can list and read but not plant files
 * (a symlink or hard link in a directory masd writes as root would be a privilege escalation). */
static int sync_agent(struct mas_keys *k, size_t a)
{
	const struct key_agent *ag = &k->agents[a];
	char dir[PATH_MAX], ipath[PATH_MAX], *idx = NULL, *old = NULL;
	size_t ilen = 0, olen = 0;
	bool wrote = false, any = false;
	DIR *d;
	struct dirent *de;
	int r;

	for (size_t i = 0; i < k->n_rings; i++)
		any |= ring_delivers_to(&k->rings[i], a);
	r = path_join(dir, sizeof(dir), k->run_root, ag->name);
	if (r < 0)
		return r;
	if (!any)
		return remove_tree(dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	if (chown(dir, geteuid(), ag->user_found ? ag->gid : getegid()) < 0 ||
	    chmod(dir, ag->user_found ? 0750 : 0700) < 0)
		return -errno;

	for (size_t i = 0; i < k->n_rings; i++) {
		const struct key_ring *ring = &k->rings[i];

		if (!ring_delivers_to(ring, a))
			continue;
		for (size_t j = 0; j < ring->n_v; j++) {
			if (!version_live(&ring->v[j]))
				continue;
			r = deliver_version(k, ring, &ring->v[j], ag, dir, &wrote);
			if (r < 0)
				return r;
		}
		r = deliver_current(k, ring, cfind_state(ring, KEYS_ACTIVE), ag, dir);
		if (r < 0)
			return r;
	}

	r = build_index(k, a, &idx, &ilen);
	if (r < 0)
		return r;
	r = path_join(ipath, sizeof(ipath), dir, "index.json");
	if (r == 0) {
		bool same = fileio_read_all(ipath, STATE_MAX_BYTES, &old, &olen) == 0 &&
			    olen == ilen && memcmp(old, idx, ilen) == 0;

		r = deliver_file(k, ag, ipath, idx, ilen, !same, &wrote);
	}
	free(old);
	free(idx);
	if (r < 0)
		return r;

	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX];

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    delivered_name(k, a, de->d_name))
			continue;
		if (path_join(path, sizeof(path), dir, de->d_name) < 0)
			continue;
		r = (de->d_type == DT_DIR ? remove_tree(path) : wipe_file(path)) ?: r;
	}
	closedir(d);
	return r;
}

/* RUNTIME/keys/.public: the public keys of every Ed25519 keyring, world-readable, so that any
 * agent can verify what the agent holding the private key signed. Only public information is
 * written here (derived from the state, no secret is read). Agent names cannot start with '.'. */
static int sync_public(struct mas_keys *k)
{
	char dir[PATH_MAX], path[PATH_MAX], *idx = NULL, *old = NULL;
	size_t ilen = 0, olen = 0, n_ed = 0;
	bool first_ring = true;
	struct dirent *de;
	FILE *f;
	DIR *d;
	int r;

	if (!k->run_root[0])
		return 0; /* a keyring instance that delivers nothing (masd's audit key) */
	r = path_join(dir, sizeof(dir), k->run_root, PUBLIC_DIR);
	if (r < 0)
		return r;
	for (size_t i = 0; i < k->n_rings; i++)
		n_ed += k->rings[i].type == MAS_KEY_ED25519;
	if (n_ed == 0)
		return remove_tree(dir);
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (chmod(dir, 0755) < 0)
		return -errno;
	f = open_memstream(&idx, &ilen);
	if (!f)
		return -ENOMEM;
	fprintf(f, "{\"keys\":{");
	for (size_t i = 0; i < k->n_rings && r == 0; i++) {
		const struct key_ring *ring = &k->rings[i];
		const struct key_version *act = cfind_state(ring, KEYS_ACTIVE);
		bool first = true;

		if (ring->type != MAS_KEY_ED25519)
			continue;
		fprintf(f, "%s\n", first_ring ? "" : ",");
		first_ring = false;
		json_str(f, ring->name);
		fprintf(f, ":{\"type\":\"ed25519\",\"current\":");
		if (act)
			json_str(f, act->kid);
		else
			fprintf(f, "null");
		fprintf(f, ",\"versions\":[");
		for (size_t j = 0; j < ring->n_v && r == 0; j++) {
			const struct key_version *v = &ring->v[j];
			char pubhex[65];

			if (!version_live(v))
				continue;
			hex(v->pub, 32, pubhex);
			fprintf(f,
				"%s{\"kid\":\"%s\",\"state\":\"%s\",\"not_before\":%" PRIu64
				",\"not_after\":",
				first ? "" : ",", v->kid, keys_state_name(v->state), v->not_before);
			first = false;
			if (v->not_after)
				fprintf(f, "%" PRIu64, v->not_after);
			else
				fprintf(f, "null");
			fprintf(f, ",\"file\":\"%s.%s.pub\",\"public_key\":\"%s\"}", ring->name,
				v->kid, pubhex);
			if (snprintf(path, sizeof(path), "%s/%s.%s.pub", dir, ring->name, v->kid) >=
			    (int)sizeof(path)) {
				r = -ENAMETOOLONG;
			} else if (!is_regular(path)) {
				EVP_PKEY *pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL,
									   v->pub, 32);
				BIO *bio = BIO_new(BIO_s_mem());
				char *data;
				long n;

				if (!pk || !bio || !PEM_write_bio_PUBKEY(bio, pk) ||
				    (n = BIO_get_mem_data(bio, &data)) <= 0)
					r = -EIO;
				else
					r = fileio_write_atomic(path, data, (size_t)n, 0444,
								(uid_t)-1, (gid_t)-1);
				EVP_PKEY_free(pk);
				BIO_free(bio);
			}
		}
		fprintf(f, "]}");
	}
	fprintf(f, "}}\n");
	if (fclose(f) != 0) {
		free(idx);
		return -ENOMEM;
	}
	if (r == 0)
		r = path_join(path, sizeof(path), dir, "index.json");
	if (r == 0 && !(fileio_read_all(path, STATE_MAX_BYTES, &old, &olen) == 0 && olen == ilen &&
			memcmp(old, idx, ilen) == 0))
		r = fileio_write_atomic(path, idx, ilen, 0444, (uid_t)-1, (gid_t)-1);
	free(old);
	free(idx);
	if (r < 0)
		return r;

	/* anything else (destroyed versions, temp files) goes */
	d = opendir(dir);
	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		bool keep = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
			    strcmp(de->d_name, "index.json") == 0;

		for (size_t i = 0; i < k->n_rings && !keep; i++) {
			const struct key_ring *ring = &k->rings[i];
			size_t nl = strlen(ring->name);

			if (ring->type != MAS_KEY_ED25519 ||
			    strncmp(de->d_name, ring->name, nl) != 0 || de->d_name[nl] != '.')
				continue;
			for (size_t j = 0; j < ring->n_v && !keep; j++)
				keep = version_live(&ring->v[j]) &&
				       strncmp(de->d_name + nl + 1, ring->v[j].kid, KEYS_KID_LEN) ==
					       0 &&
				       strcmp(de->d_name + nl + 1 + KEYS_KID_LEN, ".pub") == 0;
		}
		if (keep || path_join(path, sizeof(path), dir, de->d_name) < 0)
			continue;
		r = (de->d_type == DT_DIR ? remove_tree(path) : wipe_file(path)) ?: r;
	}
	closedir(d);
	return r;
}

static int sync_ring_agents(struct mas_keys *k, const struct key_ring *ring)
{
	int r = 0;

	for (size_t i = 0; i < ring->n_agents; i++)
		r = sync_agent(k, ring->agents[i]) ?: r;
	if (ring->type == MAS_KEY_ED25519)
		r = sync_public(k) ?: r;
	return r;
}

/* ---- audit ---- */

static int emit(struct mas_keys *k, const char *id, int prio, const char *msg,
		const struct audit_field *f, size_t n)
{
	if (!k->audit)
		return 0;
	return k->audit(k->audit_ud, id, prio, msg, f, n);
}

static int audit_version(struct mas_keys *k, struct key_ring *ring, struct key_version *v)
{
	const struct key_version *act = find_state(ring, KEYS_ACTIVE);
	char msg[256];
	int r;

	if (!(v->audited & AUD_DELIVERED) && v->state != KEYS_DESTROYED) {
		for (size_t i = 0; i < ring->n_agents; i++) {
			const struct key_agent *ag = &k->agents[ring->agents[i]];
			struct audit_field f[] = {
				{ "MAS_KEY_NAME", ring->name },
				{ "MAS_KEY_TYPE", keys_type_name(ring->type) },
				{ "MAS_KEY_OLD_KID", act && act != v ? act->kid : "-" },
				{ "MAS_KEY_NEW_KID", v->kid },
				{ "MAS_KEY_FINGERPRINT", v->fpr },
				{ "MAS_KEY_STATE", keys_state_name(v->state) },
				{ "MAS_AGENT", ag->name },
				{ "MAS_KEY_OWNER", ag->user_found ? ag->user : "root" },
				{ "MAS_KEY_REASON", v->reason },
			};

			snprintf(msg, sizeof(msg), "Key %s version %s delivered to %s (%s)%s",
				 ring->name, v->kid, ag->name, keys_state_name(v->state),
				 ag->user_found ? "" : ", root-only: the agent has no known user");
			r = emit(k, MAS_MSGID_KEY_DELIVERED,
				 ag->user_found ? LOG_NOTICE : LOG_WARNING, msg, f, 9);
			if (r < 0)
				return r;
		}
		v->audited |= AUD_DELIVERED;
	}
	if (!(v->audited & AUD_ACTIVATED) &&
	    (v->state == KEYS_ACTIVE || v->state == KEYS_RETIRING)) {
		struct audit_field f[] = {
			{ "MAS_KEY_NAME", ring->name },
			{ "MAS_KEY_TYPE", keys_type_name(ring->type) },
			{ "MAS_KEY_OLD_KID", v->prev_kid },
			{ "MAS_KEY_NEW_KID", v->kid },
			{ "MAS_KEY_FINGERPRINT", v->fpr },
			{ "MAS_KEY_REASON", v->reason },
		};

		snprintf(msg, sizeof(msg), "Key %s rotated: %s -> %s (%s)", ring->name, v->prev_kid,
			 v->kid, v->reason);
		r = emit(k, MAS_MSGID_KEY_ROTATED, LOG_NOTICE, msg, f, 6);
		if (r < 0)
			return r;
		v->audited |= AUD_ACTIVATED;
	}
	if (v->state == KEYS_DESTROYED) {
		struct audit_field f[] = {
			{ "MAS_KEY_NAME", ring->name },
			{ "MAS_KEY_TYPE", keys_type_name(ring->type) },
			{ "MAS_KEY_OLD_KID", v->kid },
			{ "MAS_KEY_NEW_KID", act ? act->kid : "-" },
			{ "MAS_KEY_FINGERPRINT", v->fpr },
			{ "MAS_KEY_REASON", v->reason },
		};

		snprintf(msg, sizeof(msg), "Key %s version %s destroyed", ring->name, v->kid);
		r = emit(k, MAS_MSGID_KEY_DESTROYED, LOG_NOTICE, msg, f, 6);
		if (r < 0)
			return r;
	}
	return 0;
}

/* Step 3 of the order at the top: make everything derived from the committed state true. */
static int ring_flush(struct mas_keys *k, struct key_ring *ring)
{
	bool dirty = false;
	size_t w = 0;
	int r;

	r = sync_ring_agents(k, ring);
	if (r < 0)
		return r;
	for (size_t i = 0; i < ring->n_v; i++) {
		char path[PATH_MAX];

		if (ring->v[i].state != KEYS_DESTROYED)
			continue;
		r = secret_path(ring, ring->v[i].kid, path, sizeof(path));
		if (r == 0)
			r = wipe_file(path);
		if (r < 0)
			return r;
		crash_point(k, "flush:wiped");
	}
	for (size_t i = 0; i < ring->n_v; i++) {
		unsigned before = ring->v[i].audited;

		r = audit_version(k, ring, &ring->v[i]);
		if (r < 0)
			goto commit; /* keep what was emitted; retried on the next flush */
		dirty |= before != ring->v[i].audited || ring->v[i].state == KEYS_DESTROYED;
	}
	if (dirty)
		crash_point(k, "flush:audited");
commit:
	for (size_t i = 0; i < ring->n_v; i++) {
		if (ring->v[i].state == KEYS_DESTROYED && r == 0)
			continue;
		ring->v[w++] = ring->v[i];
	}
	dirty |= w != ring->n_v;
	ring->n_v = w;
	if (dirty) {
		int c = ring_commit(k, ring);

		r = r ?: c;
	}
	return r;
}

/* ---- transitions ---- */

static void version_info(const struct key_version *v, struct keys_version_info *o)
{
	memset(o, 0, sizeof(*o));
	memcpy(o->kid, v->kid, sizeof(o->kid));
	o->state = v->state;
	o->created = v->created;
	o->not_before = v->not_before;
	o->not_after = v->not_after;
	memcpy(o->fingerprint, v->fpr, sizeof(o->fingerprint));
	o->has_public = v->has_pub;
	memcpy(o->public_key, v->pub, sizeof(o->public_key));
}

static int ring_create(struct mas_keys *k, struct key_ring *ring, uint64_t now,
		       enum keys_state state, uint64_t not_before, const char *reason)
{
	struct key_version v = { 0 };
	uint8_t m[KEYS_SECRET_MAX];
	char path[PATH_MAX];
	struct key_version *act = find_state(ring, KEYS_ACTIVE);
	int r;

	if (ring->n_v >= MAX_VERSIONS - 1)
		return -ENOSPC;
	for (int tries = 0;; tries++) {
		bool dup = false;

		r = generate(ring, m, v.pub, v.kid);
		if (r < 0)
			goto out;
		for (size_t i = 0; i < ring->n_v; i++)
			dup |= strcmp(ring->v[i].kid, v.kid) == 0;
		if (!dup)
			break;
		if (tries > 3) {
			r = -EEXIST;
			goto out;
		}
	}
	v.has_pub = ring->type == MAS_KEY_ED25519;
	r = fingerprint(ring, m, v.pub, v.fpr);
	if (r < 0)
		goto out;
	v.seq = ring->next_seq;
	v.state = state;
	v.created = now;
	v.not_before = not_before;
	snprintf(v.reason, sizeof(v.reason), "%s", reason);
	snprintf(v.prev_kid, sizeof(v.prev_kid), "%s", act ? act->kid : "-");

	r = secret_path(ring, v.kid, path, sizeof(path));
	if (r < 0)
		goto out;
	r = fileio_write_atomic(path, m, material_len(ring->type), 0600, (uid_t)-1, (gid_t)-1);
	if (r < 0)
		goto out;
	crash_point(k, "create:secret");

	ring->v[ring->n_v++] = v; /* keys_material_get() finds it from the callback below */
	if (state == KEYS_ACTIVE && k->before_activate) {
		/* only when no version is active: a first key, or recovery */
		struct keys_version_info ni;

		version_info(&v, &ni);
		r = k->before_activate(k->before_activate_ud, ring->name, NULL, &ni);
		if (r < 0) {
			ring->n_v--;
			wipe_file(path);
			goto out;
		}
	}
	ring->next_seq++;
	r = ring_commit(k, ring);
	if (r < 0) {
		ring->n_v--;
		ring->next_seq--;
		wipe_file(path);
		goto out;
	}
	crash_point(k, "create:state");
	r = ring_flush(k, ring);
out:
	OPENSSL_cleanse(m, sizeof(m));
	OPENSSL_cleanse(&v, sizeof(v));
	return r;
}

static int ring_promote(struct mas_keys *k, struct key_ring *ring, struct key_version *p,
			uint64_t now, const char *reason)
{
	struct key_version *act = find_state(ring, KEYS_ACTIVE);
	struct key_version saved_p = *p, saved_a;
	int r;

	if (k->before_activate) {
		struct keys_version_info oi, ni;

		if (act)
			version_info(act, &oi);
		version_info(p, &ni);
		r = k->before_activate(k->before_activate_ud, ring->name, act ? &oi : NULL, &ni);
		if (r < 0)
			return r;
	}
	if (act) {
		saved_a = *act;
		act->state = KEYS_RETIRING;
		act->not_after = sat_add(now, ring->keep_previous);
	}
	p->state = KEYS_ACTIVE;
	if (p->not_before < now)
		p->not_before = now; /* late (downtime): the schedule restarts from here */
	snprintf(p->prev_kid, sizeof(p->prev_kid), "%s", act ? act->kid : "-");
	if (reason)
		snprintf(p->reason, sizeof(p->reason), "%s", reason);
	r = ring_commit(k, ring);
	if (r < 0) {
		*p = saved_p;
		if (act)
			*act = saved_a;
		return r;
	}
	crash_point(k, "promote:state");
	return ring_flush(k, ring);
}

static int ring_destroy_expired(struct mas_keys *k, struct key_ring *ring, uint64_t now)
{
	bool any = false;
	int r;

	for (size_t i = 0; i < ring->n_v; i++)
		if (ring->v[i].state == KEYS_RETIRING && ring->v[i].not_after <= now) {
			ring->v[i].state = KEYS_DESTROYED;
			any = true;
		}
	if (!any)
		return 0;
	r = ring_commit(k, ring);
	if (r < 0) {
		for (size_t i = 0; i < ring->n_v; i++)
			if (ring->v[i].state == KEYS_DESTROYED)
				ring->v[i].state = KEYS_RETIRING;
		return r;
	}
	crash_point(k, "destroy:state");
	r = ring_flush(k, ring);
	return r < 0 ? r : 1;
}

/* When the next pending version is created: lead seconds before the active one's period ends. */
static uint64_t create_due(const struct key_ring *ring, const struct key_version *act)
{
	if (!act || ring->rotate_every == 0)
		return KEYS_NEVER;
	if (act->not_before + ring->rotate_every < act->not_before)
		return KEYS_NEVER; /* overflow: effectively never */
	return act->not_before + ring->rotate_every - ring->lead;
}

/* KEY_OVERDUE: something due at `due` had not happened by now. At most hourly per ring. */
static int emit_overdue(struct mas_keys *k, struct key_ring *ring, const struct key_version *act,
			uint64_t now, uint64_t due, const char *why)
{
	char msg[256], late[32];
	struct audit_field f[] = {
		{ "MAS_KEY_NAME", ring->name },
		{ "MAS_KEY_TYPE", keys_type_name(ring->type) },
		{ "MAS_KEY_KID", act->kid },
		{ "MAS_KEY_OVERDUE_S", late },
	};
	uint64_t s = now > due ? now - due : 0;
	int r;

	if (ring->warned_at && now < sat_add(ring->warned_at, OVERDUE_REPEAT_S))
		return 0;
	snprintf(late, sizeof(late), "%" PRIu64, s);
	snprintf(msg, sizeof(msg), "Key %s rotation overdue by %" PRIu64 "s (%s)", ring->name, s,
		 why);
	r = emit(k, MAS_MSGID_KEY_OVERDUE, LOG_WARNING, msg, f, 4);
	if (r == 0)
		ring->warned_at = now;
	return r;
}

/* One transition if one is due: 1 done, 0 nothing due, < 0 error. */
static int ring_step(struct mas_keys *k, struct key_ring *ring, uint64_t now)
{
	struct key_version *act = find_state(ring, KEYS_ACTIVE);
	struct key_version *pend = find_state(ring, KEYS_PENDING);
	uint64_t due;
	int r;

	if (!act && !pend) {
		r = ring_create(k, ring, now, KEYS_ACTIVE, now,
				ring->next_seq > 1 ? "recovery" : "initial");
		return r < 0 ? r : 1;
	}
	if (!act) {
		r = ring_promote(k, ring, pend, now, "recovery");
		return r < 0 ? r : 1;
	}
	r = ring_destroy_expired(k, ring, now);
	if (r != 0)
		return r;
	if (pend && pend->not_before <= now) {
		if (now > sat_add(pend->not_before, OVERDUE_GRACE_S)) {
			r = emit_overdue(k, ring, act, now, pend->not_before,
					 "activation late: masd was not running");
			if (r < 0)
				return r;
		}
		r = ring_promote(k, ring, pend, now, NULL);
		return r < 0 ? r : 1;
	}
	due = create_due(ring, act);
	if (!pend && now >= due) {
		uint64_t nb = act->not_before + ring->rotate_every;
		bool late = now > due + OVERDUE_GRACE_S;

		/* catch-up: deliver first, activate after the lead */
		if (nb < sat_add(now, ring->lead))
			nb = sat_add(now, ring->lead);
		if (late) {
			r = emit_overdue(k, ring, act, now, due,
					 "masd was not running; catching up");
			if (r < 0)
				return r;
		}
		r = ring_create(k, ring, now, KEYS_PENDING, nb, late ? "catch-up" : "schedule");
		return r < 0 ? r : 1;
	}
	return 0;
}

static int ring_settle(struct mas_keys *k, struct key_ring *ring, uint64_t now)
{
	int r = 0, n = 0;

	for (int i = 0; i < MAX_STEPS; i++) {
		r = ring_step(k, ring, now);
		if (r <= 0)
			break;
		n++;
	}
	if (r < 0) {
		const struct key_version *act = cfind_state(ring, KEYS_ACTIVE);

		ring->retry_at = sat_add(now, RETRY_S);
		/* a rotation that keeps failing while masd runs is overdue too: say so */
		if (act && ring->rotate_every &&
		    now > sat_add(act->not_before, ring->rotate_every + OVERDUE_GRACE_S))
			(void)emit_overdue(k, ring, act, now, act->not_before + ring->rotate_every,
					   "the rotation keeps failing");
		return r;
	}
	ring->retry_at = 0;
	return n;
}

int keys_tick(struct mas_keys *k, uint64_t now)
{
	int r, first_err = 0, n = 0;

	for (size_t i = 0; i < k->n_rings; i++) {
		r = ring_settle(k, &k->rings[i], now);
		if (r < 0)
			first_err = first_err ?: r;
		else
			n += r;
	}
	return first_err ?: n;
}

static uint64_t ring_next_due(const struct key_ring *ring, uint64_t now)
{
	const struct key_version *act = cfind_state(ring, KEYS_ACTIVE);
	const struct key_version *pend = cfind_state(ring, KEYS_PENDING);
	uint64_t due = KEYS_NEVER;

	if (!act)
		due = now;
	else if (pend)
		due = pend->not_before;
	else
		due = create_due(ring, act);
	for (size_t i = 0; i < ring->n_v; i++)
		if (ring->v[i].state == KEYS_RETIRING && ring->v[i].not_after < due)
			due = ring->v[i].not_after;
		else if (ring->v[i].state == KEYS_DESTROYED)
			due = now;
	/* after a failure, not before the retry time: no busy loop in masd's timer */
	if (ring->retry_at > now && due < ring->retry_at)
		due = ring->retry_at;
	return due;
}

uint64_t keys_next_due(const struct mas_keys *k, uint64_t now)
{
	uint64_t due = KEYS_NEVER;

	for (size_t i = 0; i < k->n_rings; i++) {
		uint64_t d = ring_next_due(&k->rings[i], now);

		if (d < due)
			due = d;
	}
	return due;
}

static struct key_ring *find_ring(const struct mas_keys *k, const char *name)
{
	for (size_t i = 0; i < k->n_rings; i++)
		if (strcmp(k->rings[i].name, name) == 0)
			return &k->rings[i];
	return NULL;
}

int keys_rotate(struct mas_keys *k, const char *name, uint64_t now, unsigned flags)
{
	struct key_ring *ring = find_ring(k, name);
	struct key_version *pend;
	int r;

	if (!ring)
		return -ENOENT;
	if (flags & KEYS_ROTATE_REVOKE)
		flags |= KEYS_ROTATE_IMMEDIATE;
	r = ring_settle(k, ring, now); /* the first version, finishing what is due */
	if (r < 0)
		return r;
	pend = find_state(ring, KEYS_PENDING);
	if (pend && !(flags & KEYS_ROTATE_IMMEDIATE))
		return -EBUSY;
	if (!pend) {
		r = ring_create(k, ring, now, KEYS_PENDING,
				now + ((flags & KEYS_ROTATE_IMMEDIATE) ? 0 : ring->lead),
				(flags & KEYS_ROTATE_REVOKE) ? "revoke" : "manual");
		if (r < 0)
			return r;
		pend = find_state(ring, KEYS_PENDING);
	}
	if (flags & KEYS_ROTATE_IMMEDIATE) {
		r = ring_promote(k, ring, pend, now,
				 (flags & KEYS_ROTATE_REVOKE) ? "revoke" : "manual");
		if (r < 0)
			return r;
	}
	if (flags & KEYS_ROTATE_REVOKE) {
		for (size_t i = 0; i < ring->n_v; i++)
			if (ring->v[i].state == KEYS_RETIRING) {
				ring->v[i].not_after = now;
				snprintf(ring->v[i].reason, sizeof(ring->v[i].reason), "revoke");
			}
	}
	r = ring_settle(k, ring, now);
	return r < 0 ? r : 0;
}

/* ---- open / close ---- */

static int resolve_user(struct key_agent *ag)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	ag->uid = geteuid(); /* root in masd; the test user in unit tests */
	ag->gid = getegid();
	ag->user_found = false;
	if (!ag->user)
		return 0;
	r = getpwnam_r(ag->user, &pw, buf, sizeof(buf), &res);
	if (r != 0 && r != ENOENT && r != ESRCH)
		return -r;
	if (!res)
		return 0; /* unknown user: root-only, the delivery record says so */
	ag->uid = pw.pw_uid;
	ag->gid = pw.pw_gid;
	ag->user_found = true;
	return 0;
}

/* Crash leftovers in a ring's directory: temp files and secrets no committed version owns. */
static int ring_scrub_dir(struct key_ring *ring)
{
	DIR *d = opendir(ring->dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		const char *n = de->d_name;
		bool keep = false;

		if (strcmp(n, ".") == 0 || strcmp(n, "..") == 0 || strcmp(n, "state") == 0)
			continue;
		if (!is_temp_name(n) && strlen(n) == KEYS_KID_LEN + 7 &&
		    strcmp(n + KEYS_KID_LEN, ".secret") == 0) {
			for (size_t i = 0; i < ring->n_v; i++)
				keep |= strncmp(ring->v[i].kid, n, KEYS_KID_LEN) == 0 &&
					ring->v[i].state != KEYS_DESTROYED;
		} else if (!is_temp_name(n)) {
			continue; /* not ours: leave it */
		}
		if (keep)
			continue;
		if (path_join(path, sizeof(path), ring->dir, n) == 0)
			r = wipe_file(path) ?: r;
	}
	closedir(d);
	return r;
}

/* The secret file holds what the state committed: the fingerprint (and for Ed25519 the public
 * key) derived from it agree with the state's. Catches a swapped or corrupted secret file. */
static bool material_matches(const struct key_ring *ring, const struct key_version *v,
			     const uint8_t *m)
{
	uint8_t pub[32];
	char fpr[KEYS_FPR_LEN + 1];

	if (ring->type == MAS_KEY_ED25519) {
		EVP_PKEY *pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, m, 32);
		size_t plen = sizeof(pub);
		bool ok = pk && EVP_PKEY_get_raw_public_key(pk, pub, &plen) > 0 && plen == 32 &&
			  memcmp(pub, v->pub, 32) == 0;

		EVP_PKEY_free(pk);
		if (!ok)
			return false;
	}
	return fingerprint(ring, m, v->pub, fpr) == 0 && strcmp(fpr, v->fpr) == 0;
}

/* A committed version whose secret is missing, the wrong size or not the committed material
 * cannot be delivered or used: commit it as destroyed (audited, reason missing-secret or
 * bad-secret); the next tick replaces it. */
static int ring_check_secrets(struct mas_keys *k, struct key_ring *ring)
{
	bool any = false;

	for (size_t i = 0; i < ring->n_v; i++) {
		uint8_t m[KEYS_SECRET_MAX];
		struct key_version *v = &ring->v[i];

		if (v->state == KEYS_DESTROYED)
			continue;
		if (read_secret(ring, v->kid, m) < 0) {
			v->state = KEYS_DESTROYED;
			snprintf(v->reason, sizeof(v->reason), "missing-secret");
			any = true;
		} else if (!material_matches(ring, v, m)) {
			v->state = KEYS_DESTROYED;
			snprintf(v->reason, sizeof(v->reason), "bad-secret");
			any = true;
		}
		OPENSSL_cleanse(m, sizeof(m));
	}
	return any ? ring_commit(k, ring) : 0;
}

static int ring_init(struct mas_keys *k, struct key_ring *ring, const struct mas_key_conf *c,
		     const struct keys_options *o, struct mas_error *err)
{
	char base[PATH_MAX];
	int r;

	if (!name_ok(c->name, false)) {
		err_set(err, "key name '%s': use letters, digits, '_', '-', '@'", c->name);
		return -EINVAL;
	}
	snprintf(ring->name, sizeof(ring->name), "%s", c->name);
	ring->type = c->type;
	ring->rotate_every = c->rotate_every_s;
	ring->keep_previous = c->keep_previous_for_s;
	ring->agents = calloc(c->n_deliver_to ?: 1, sizeof(size_t));
	if (!ring->agents)
		return -ENOMEM;
	for (size_t i = 0; i < c->n_deliver_to; i++) {
		if (c->deliver_to[i] >= o->n_agents) {
			err_set(err, "key %s: deliver_to index out of range", c->name);
			return -EINVAL;
		}
		ring->agents[ring->n_agents++] = c->deliver_to[i];
	}
	ring->lead = ring->n_agents ? k->default_lead : 0;
	if (ring->rotate_every && ring->lead > ring->rotate_every / 2)
		ring->lead = ring->rotate_every / 2;
	ring->next_seq = 1;
	ring->v = calloc(MAX_VERSIONS, sizeof(*ring->v));
	if (!ring->v)
		return -ENOMEM;
	r = path_join(base, sizeof(base), k->state_root, ring->name);
	if (r < 0)
		return r;
	snprintf(ring->dir, sizeof(ring->dir), "%s", base);
	r = fileio_mkdir_p(ring->dir, 0700);
	if (r < 0)
		return r;
	r = ring_load(ring, err);
	if (r == -ENOENT)
		r = 0;
	else if (r < 0)
		return r;
	r = ring_scrub_dir(ring);
	if (r < 0)
		return r;
	return ring_check_secrets(k, ring);
}

void keys_close(struct mas_keys *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n_rings; i++) {
		if (k->rings[i].v)
			OPENSSL_cleanse(k->rings[i].v, MAX_VERSIONS * sizeof(*k->rings[i].v));
		free(k->rings[i].v);
		free(k->rings[i].agents);
	}
	for (size_t i = 0; i < k->n_agents; i++)
		free(k->agents[i].user);
	free(k->rings);
	free(k->agents);
	free(k);
}

/* Agent directories under RUNTIME/keys that no configured agent owns any more. */
static int remove_stale_agents(struct mas_keys *k)
{
	DIR *d = opendir(k->run_root);
	struct dirent *de;
	int r = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		char path[PATH_MAX];
		bool known = false;

		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		for (size_t i = 0; i < k->n_agents; i++)
			known |= strcmp(k->agents[i].name, de->d_name) == 0;
		known |= strcmp(de->d_name, PUBLIC_DIR) == 0;
		if (known || path_join(path, sizeof(path), k->run_root, de->d_name) < 0)
			continue;
		r = (de->d_type == DT_DIR ? remove_tree(path) : wipe_file(path)) ?: r;
	}
	closedir(d);
	return r;
}

int keys_open(const struct keys_options *o, uint64_t now, struct mas_keys **ret,
	      struct mas_error *err)
{
	struct mas_keys *k;
	int r;

	(void)now;
	if (err)
		err->msg[0] = '\0';
	if (!o || !o->state_dir || (!o->runtime_dir && o->n_agents) || (o->n_keys && !o->keys) ||
	    (o->n_agents && !o->agents))
		return -EINVAL;
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->audit = o->audit;
	k->audit_ud = o->audit_userdata;
	k->crash = o->crash;
	k->crash_ud = o->crash_userdata;
	k->default_lead = o->lead_s ?: KEYS_DEFAULT_LEAD_S;
	if (path_join(k->state_root, sizeof(k->state_root), o->state_dir, "keys") < 0 ||
	    (o->runtime_dir &&
	     path_join(k->run_root, sizeof(k->run_root), o->runtime_dir, "keys") < 0)) {
		r = -ENAMETOOLONG;
		goto fail;
	}
	r = fileio_mkdir_p(k->state_root, 0700);
	if (r == 0 && k->run_root[0])
		r = fileio_mkdir_p(k->run_root, 0711);
	if (r < 0)
		goto fail;
	/* traversable by agents (they need to reach their own directory), listable by root */
	if ((k->run_root[0] && chmod(k->run_root, 0711) < 0) || chmod(k->state_root, 0700) < 0) {
		r = -errno;
		goto fail;
	}

	k->agents = calloc(o->n_agents ?: 1, sizeof(*k->agents));
	k->rings = calloc(o->n_keys ?: 1, sizeof(*k->rings));
	if (!k->agents || !k->rings) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < o->n_agents; i++) {
		struct key_agent *ag = &k->agents[k->n_agents++];

		if (!name_ok(o->agents[i].name, true)) {
			err_set(err, "agent name '%s' unusable",
				o->agents[i].name ? o->agents[i].name : "(null)");
			r = -EINVAL;
			goto fail;
		}
		snprintf(ag->name, sizeof(ag->name), "%s", o->agents[i].name);
		if (o->agents[i].user && !(ag->user = strdup(o->agents[i].user))) {
			r = -ENOMEM;
			goto fail;
		}
		r = resolve_user(ag);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < o->n_keys; i++) {
		for (size_t j = 0; j < i; j++)
			if (o->keys[i].name && o->keys[j].name &&
			    strcmp(o->keys[i].name, o->keys[j].name) == 0) {
				err_set(err, "key %s defined twice", o->keys[i].name);
				r = -EINVAL;
				goto fail;
			}
		r = ring_init(k, &k->rings[k->n_rings++], &o->keys[i], o, err);
		if (r < 0)
			goto fail;
	}
	/* deliveries and unfinished audit records, after every ring is known */
	r = k->run_root[0] ? remove_stale_agents(k) : 0;
	if (r == 0)
		r = sync_public(k);
	if (r < 0)
		goto fail;
	for (size_t a = 0; a < k->n_agents; a++) {
		r = sync_agent(k, a);
		if (r < 0)
			goto fail;
	}
	for (size_t i = 0; i < k->n_rings; i++) {
		r = ring_flush(k, &k->rings[i]);
		if (r < 0)
			goto fail;
	}
	*ret = k;
	return 0;
fail:
	keys_close(k);
	return r;
}

void keys_set_before_activate(struct mas_keys *k, keys_before_activate_fn fn, void *userdata)
{
	k->before_activate = fn;
	k->before_activate_ud = userdata;
}

/* ---- reading ---- */

int keys_versions(const struct mas_keys *k, const char *name, struct keys_version_info **ret,
		  size_t *ret_n)
{
	const struct key_ring *ring = find_ring(k, name);
	struct keys_version_info *out;
	size_t n = 0;

	if (!ring)
		return -ENOENT;
	out = calloc(ring->n_v ?: 1, sizeof(*out));
	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < ring->n_v; i++) {
		version_info(&ring->v[i], &out[n++]);
	}
	*ret = out;
	*ret_n = n;
	return 0;
}

int keys_material_get(const struct mas_keys *k, const char *name, const char *kid,
		      struct keys_material *ret)
{
	const struct key_ring *ring = find_ring(k, name);
	const struct key_version *v = NULL;
	int r;

	memset(ret, 0, sizeof(*ret));
	if (!ring)
		return -ENOENT;
	for (size_t i = 0; i < ring->n_v; i++) {
		const struct key_version *c = &ring->v[i];

		if (c->state == KEYS_DESTROYED)
			continue;
		if (kid ? strcmp(c->kid, kid) == 0 : c->state == KEYS_ACTIVE)
			v = c;
	}
	if (!v)
		return -ENOKEY;
	r = read_secret(ring, v->kid, ret->bytes);
	if (r < 0) {
		keys_material_clear(ret);
		return r;
	}
	memcpy(ret->kid, v->kid, sizeof(ret->kid));
	ret->type = ring->type;
	ret->len = material_len(ring->type);
	return 0;
}

void keys_material_clear(struct keys_material *m)
{
	if (m)
		OPENSSL_cleanse(m, sizeof(*m));
}

/* ---- masctl keys list ---- */

int keys_list(const struct mas_keys *k, uint64_t now, struct keys_list_entry **ret, size_t *ret_n)
{
	struct keys_list_entry *out = calloc(k->n_rings ?: 1, sizeof(*out));

	if (!out)
		return -ENOMEM;
	for (size_t i = 0; i < k->n_rings; i++) {
		const struct key_ring *ring = &k->rings[i];
		const struct key_version *act = cfind_state(ring, KEYS_ACTIVE);
		const struct key_version *pend = cfind_state(ring, KEYS_PENDING);
		struct keys_list_entry *e = &out[i];

		snprintf(e->name, sizeof(e->name), "%s", ring->name);
		e->type = ring->type;
		e->rotate_every_s = ring->rotate_every;
		e->keep_previous_for_s = ring->keep_previous;
		e->next_rotation = KEYS_NEVER;
		for (size_t j = 0; j < ring->n_v; j++)
			e->n_versions += version_live(&ring->v[j]);
		if (pend) {
			memcpy(e->pending_kid, pend->kid, sizeof(e->pending_kid));
			e->next_rotation = pend->not_before;
		}
		if (act) {
			memcpy(e->active_kid, act->kid, sizeof(e->active_kid));
			e->active_since = act->not_before;
			e->age_s = now > act->not_before ? now - act->not_before : 0;
			if (!pend && ring->rotate_every)
				e->next_rotation = act->not_before + ring->rotate_every;
			e->overdue = ring->rotate_every &&
				     now > act->not_before + ring->rotate_every + OVERDUE_GRACE_S;
		} else {
			e->overdue = true; /* nothing to sign with: the next tick must fix it */
		}
	}
	*ret = out;
	*ret_n = k->n_rings;
	return 0;
}

size_t keys_overdue(const struct mas_keys *k, uint64_t now)
{
	struct keys_list_entry *e;
	size_t n = 0, c = 0;

	if (keys_list(k, now, &e, &n) < 0)
		return 0;
	for (size_t i = 0; i < n; i++)
		c += e[i].overdue;
	free(e);
	return c;
}

static void fmt_duration(char *out, size_t size, uint64_t s)
{
	if (s >= 86400)
		snprintf(out, size, "%" PRIu64 "d%" PRIu64 "h", s / 86400, s % 86400 / 3600);
	else if (s >= 3600)
		snprintf(out, size, "%" PRIu64 "h%" PRIu64 "m", s / 3600, s % 3600 / 60);
	else if (s >= 60)
		snprintf(out, size, "%" PRIu64 "m%" PRIu64 "s", s / 60, s % 60);
	else
		snprintf(out, size, "%" PRIu64 "s", s);
}

static void fmt_time(char *out, size_t size, uint64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t == KEYS_NEVER || !gmtime_r(&tt, &tm))
		snprintf(out, size, "never");
	else
		strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int keys_cli_format(FILE *out, const struct keys_list_entry *e, size_t n, uint64_t now,
		    unsigned flags)
{
	if (flags & KEYS_FORMAT_JSON) {
		fprintf(out, "{\"now\":%" PRIu64 ",\"keys\":[", now);
		for (size_t i = 0; i < n; i++) {
			fprintf(out, "%s{\"name\":", i ? "," : "");
			json_str(out, e[i].name);
			fprintf(out, ",\"type\":\"%s\",\"active_kid\":", keys_type_name(e[i].type));
			if (e[i].active_kid[0])
				json_str(out, e[i].active_kid);
			else
				fprintf(out, "null");
			fprintf(out, ",\"pending_kid\":");
			if (e[i].pending_kid[0])
				json_str(out, e[i].pending_kid);
			else
				fprintf(out, "null");
			fprintf(out,
				",\"active_since\":%" PRIu64 ",\"age_s\":%" PRIu64
				",\"rotate_every_s\":%" PRIu64 ",\"keep_previous_for_s\":%" PRIu64
				",\"next_rotation\":",
				e[i].active_since, e[i].age_s, e[i].rotate_every_s,
				e[i].keep_previous_for_s);
			if (e[i].next_rotation == KEYS_NEVER)
				fprintf(out, "null");
			else
				fprintf(out, "%" PRIu64, e[i].next_rotation);
			fprintf(out, ",\"versions\":%zu,\"overdue\":%s}", e[i].n_versions,
				e[i].overdue ? "true" : "false");
		}
		fprintf(out, "]}\n");
	} else {
		fprintf(out, "%-16s %-12s %-16s %-10s %-21s %s\n", "NAME", "TYPE", "ACTIVE KID",
			"AGE", "NEXT ROTATION", "STATUS");
		for (size_t i = 0; i < n; i++) {
			char age[32], next[32];

			fmt_duration(age, sizeof(age), e[i].age_s);
			fmt_time(next, sizeof(next), e[i].next_rotation);
			fprintf(out, "%-16s %-12s %-16s %-10s %-21s %s%s%s\n", e[i].name,
				keys_type_name(e[i].type),
				e[i].active_kid[0] ? e[i].active_kid : "-", age, next,
				e[i].overdue ? "OVERDUE" : "ok",
				e[i].pending_kid[0] ? ", pending " : "", e[i].pending_kid);
		}
	}
	return ferror(out) ? -EIO : 0;
}
