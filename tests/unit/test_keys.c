/* SPDX-License-Identifier: GPL-2.0-only */
/* Keyrings with a fake clock: the state machine, schedule arithmetic, restarts and catch-up,
 * keep_previous_for edges, destruction, reconciliation and malformed state files. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "fileio.h"
#include "keys.h"
#include "msgid.h"

#define DAY 86400ull
#define T0 1800000000ull /* fake clock origin */
#define LEAD 3600ull

struct rec {
	char id[40];
	char name[32];
	char old_kid[20];
	char new_kid[20];
	char agent[32];
	char reason[20];
};

struct fx {
	char dir[128];
	char state[160];
	char run[160];
	struct mas_agent agents[2];
	size_t deliver[2];
	struct mas_key_conf conf[3];
	size_t n_conf;
	struct keys_options o;
	struct mas_keys *k;
	struct rec recs[256];
	size_t n_recs;
	int fail_next; /* the sink fails this many times */
	int before_calls;
	int before_ret;
	char before_old[20], before_new[20];
};

static const char *field(const struct audit_field *f, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(f[i].name, name) == 0)
			return f[i].value;
	return "";
}

static int sink(void *ud, const char *id, int prio, const char *msg, const struct audit_field *f,
		size_t n)
{
	struct fx *x = ud;
	struct rec *r;

	(void)prio;
	assert_non_null(msg);
	if (x->fail_next > 0) {
		x->fail_next--;
		return -EIO;
	}
	assert_true(x->n_recs < 256);
	r = &x->recs[x->n_recs++];
	snprintf(r->id, sizeof(r->id), "%s", id);
	snprintf(r->name, sizeof(r->name), "%s", field(f, n, "MAS_KEY_NAME"));
	snprintf(r->old_kid, sizeof(r->old_kid), "%s", field(f, n, "MAS_KEY_OLD_KID"));
	snprintf(r->new_kid, sizeof(r->new_kid), "%s", field(f, n, "MAS_KEY_NEW_KID"));
	snprintf(r->agent, sizeof(r->agent), "%s", field(f, n, "MAS_AGENT"));
	snprintf(r->reason, sizeof(r->reason), "%s", field(f, n, "MAS_KEY_REASON"));
	/* never material: every value is short, printable, and no field is named like a secret */
	for (size_t i = 0; i < n; i++)
		assert_true(strlen(f[i].value) <= 64);
	return 0;
}

static size_t count(const struct fx *x, const char *id)
{
	size_t c = 0;

	for (size_t i = 0; i < x->n_recs; i++)
		c += strcmp(x->recs[i].id, id) == 0;
	return c;
}

static const struct rec *last(const struct fx *x, const char *id)
{
	for (size_t i = x->n_recs; i-- > 0;)
		if (strcmp(x->recs[i].id, id) == 0)
			return &x->recs[i];
	return NULL;
}

/* One hs256 key "jwt" (30d/7d, delivered to agent0) and, optionally, more. */
static int setup(void **state)
{
	struct fx *x = calloc(1, sizeof(*x));

	assert_non_null(x);
	snprintf(x->dir, sizeof(x->dir), "/tmp/test_keys.XXXXXX");
	assert_non_null(mkdtemp(x->dir));
	snprintf(x->state, sizeof(x->state), "%s/state", x->dir);
	snprintf(x->run, sizeof(x->run), "%s/run", x->dir);
	x->agents[0].name = "copywriter";
	x->agents[0].user = NULL;
	x->agents[1].name = "analyst";
	x->deliver[0] = 0;
	x->conf[0].name = "jwt";
	x->conf[0].type = MAS_KEY_HS256;
	x->conf[0].rotate_every_s = 30 * DAY;
	x->conf[0].keep_previous_for_s = 7 * DAY;
	x->conf[0].deliver_to = x->deliver;
	x->conf[0].n_deliver_to = 1;
	x->n_conf = 1;
	x->o.state_dir = x->state;
	x->o.runtime_dir = x->run;
	x->o.keys = x->conf;
	x->o.agents = x->agents;
	x->o.n_agents = 2;
	x->o.lead_s = LEAD;
	x->o.audit = sink;
	x->o.audit_userdata = x;
	*state = x;
	return 0;
}

static int rm_rf(const char *path)
{
	char cmd[PATH_MAX + 16];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
	return system(cmd);
}

static int teardown(void **state)
{
	struct fx *x = *state;

	keys_close(x->k);
	rm_rf(x->dir);
	free(x);
	return 0;
}

static void fx_open(struct fx *x, uint64_t now)
{
	struct mas_error err = { 0 };
	int r;

	keys_close(x->k);
	x->k = NULL;
	x->o.n_keys = x->n_conf;
	r = keys_open(&x->o, now, &x->k, &err);
	if (r < 0)
		fail_msg("keys_open: %s (%s)", strerror(-r), err.msg);
}

static void versions(struct fx *x, const char *name, struct keys_version_info **v, size_t *n)
{
	assert_int_equal(keys_versions(x->k, name, v, n), 0);
}

static enum keys_state state_of(struct fx *x, const char *name, const char *kid)
{
	struct keys_version_info *v;
	size_t n;
	int s = -1;

	versions(x, name, &v, &n);
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i].kid, kid) == 0)
			s = (int)v[i].state;
	free(v);
	return (enum keys_state)s;
}

static void kid_at(struct fx *x, const char *name, enum keys_state s, char *out)
{
	struct keys_version_info *v;
	size_t n;

	out[0] = '\0';
	versions(x, name, &v, &n);
	for (size_t i = 0; i < n; i++)
		if (v[i].state == s)
			strcpy(out, v[i].kid);
	free(v);
}

static size_t n_versions(struct fx *x, const char *name)
{
	struct keys_version_info *v;
	size_t n;

	versions(x, name, &v, &n);
	free(v);
	return n;
}

static bool exists(const char *fmt, ...)
{
	char path[PATH_MAX];
	struct stat st;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(path, sizeof(path), fmt, ap);
	va_end(ap);
	return lstat(path, &st) == 0;
}

/* ---- state machine and schedule ---- */

static void test_first_version(void **state)
{
	struct fx *x = *state;
	char a[20];

	fx_open(x, T0);
	assert_int_equal(keys_next_due(x->k, T0), T0); /* nothing yet: due at once */
	assert_int_equal(keys_tick(x->k, T0), 1);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	assert_int_equal(strlen(a), KEYS_KID_LEN);
	assert_int_equal(n_versions(x, "jwt"), 1);
	assert_string_equal(last(x, MAS_MSGID_KEY_ROTATED)->old_kid, "-");
	assert_string_equal(last(x, MAS_MSGID_KEY_ROTATED)->new_kid, a);
	assert_string_equal(last(x, MAS_MSGID_KEY_ROTATED)->reason, "initial");
	assert_string_equal(last(x, MAS_MSGID_KEY_DELIVERED)->agent, "copywriter");
	/* the next pending version is created one lead before the period ends */
	assert_int_equal(keys_next_due(x->k, T0), T0 + 30 * DAY - LEAD);
	assert_int_equal(keys_tick(x->k, T0 + 1), 0);
	assert_true(exists("%s/keys/jwt/%s.secret", x->state, a));
	assert_true(exists("%s/keys/copywriter/jwt.%s.key", x->run, a));
	assert_true(exists("%s/keys/copywriter/jwt.current", x->run));
	assert_true(exists("%s/keys/copywriter/index.json", x->run));
	assert_false(exists("%s/keys/analyst", x->run)); /* nothing delivered to it */
}

static void test_full_rollover(void **state)
{
	struct fx *x = *state;
	uint64_t due = T0 + 30 * DAY - LEAD, act = T0 + 30 * DAY, end = act + 7 * DAY;
	char a[20], b[20], p[20];

	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);

	/* one second early: nothing */
	assert_int_equal(keys_tick(x->k, due - 1), 0);
	kid_at(x, "jwt", KEYS_PENDING, p);
	assert_string_equal(p, "");

	/* due: a pending version, delivered verify-only */
	assert_int_equal(keys_tick(x->k, due), 1);
	kid_at(x, "jwt", KEYS_PENDING, b);
	assert_int_equal(strlen(b), KEYS_KID_LEN);
	assert_string_not_equal(a, b);
	assert_string_equal(last(x, MAS_MSGID_KEY_DELIVERED)->new_kid, b);
	assert_true(exists("%s/keys/copywriter/jwt.%s.key", x->run, b));
	assert_int_equal(keys_next_due(x->k, due), act);
	assert_int_equal(count(x, MAS_MSGID_KEY_ROTATED), 1); /* not rotated yet */

	/* activation */
	assert_int_equal(keys_tick(x->k, act - 1), 0);
	assert_int_equal(keys_tick(x->k, act), 1);
	assert_int_equal(state_of(x, "jwt", b), KEYS_ACTIVE);
	assert_int_equal(state_of(x, "jwt", a), KEYS_RETIRING);
	assert_string_equal(last(x, MAS_MSGID_KEY_ROTATED)->old_kid, a);
	assert_string_equal(last(x, MAS_MSGID_KEY_ROTATED)->new_kid, b);
	assert_string_equal(last(x, MAS_MSGID_KEY_ROTATED)->reason, "schedule");
	assert_int_equal(keys_next_due(x->k, act), end);

	/* keep_previous_for edges: valid through end - 1, destroyed at end */
	assert_int_equal(keys_tick(x->k, end - 1), 0);
	assert_int_equal(state_of(x, "jwt", a), KEYS_RETIRING);
	assert_true(exists("%s/keys/copywriter/jwt.%s.key", x->run, a));
	assert_int_equal(keys_tick(x->k, end), 1);
	assert_int_equal((int)state_of(x, "jwt", a), -1);
	assert_false(exists("%s/keys/jwt/%s.secret", x->state, a));
	assert_false(exists("%s/keys/copywriter/jwt.%s.key", x->run, a));
	assert_string_equal(last(x, MAS_MSGID_KEY_DESTROYED)->old_kid, a);
	assert_string_equal(last(x, MAS_MSGID_KEY_DESTROYED)->new_kid, b);
	/* the next cycle is anchored on the activation, not on wall-clock drift */
	assert_int_equal(keys_next_due(x->k, end), act + 30 * DAY - LEAD);
}

static void test_restart_keeps_schedule(void **state)
{
	struct fx *x = *state;
	char a[20], b[20];
	struct keys_version_info *v1, *v2;
	size_t n1, n2;

	fx_open(x, T0);
	keys_tick(x->k, T0);
	keys_tick(x->k, T0 + 30 * DAY - LEAD);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	kid_at(x, "jwt", KEYS_PENDING, b);
	versions(x, "jwt", &v1, &n1);
	x->n_recs = 0;
	fx_open(x, T0 + 30 * DAY - 10); /* restart inside the lead */
	assert_int_equal(x->n_recs, 0); /* nothing to redo */
	versions(x, "jwt", &v2, &n2);
	assert_int_equal(n1, n2);
	assert_memory_equal(v1, v2, n1 * sizeof(*v1));
	free(v1);
	free(v2);
	assert_int_equal(keys_next_due(x->k, T0 + 30 * DAY - 10), T0 + 30 * DAY);
	assert_int_equal(keys_tick(x->k, T0 + 30 * DAY), 1);
	assert_int_equal(state_of(x, "jwt", b), KEYS_ACTIVE);
}

static void test_catch_up_after_downtime(void **state)
{
	struct fx *x = *state;
	uint64_t back = T0 + 100 * DAY;
	struct keys_list_entry *e;
	size_t n;
	char a[20], b[20];

	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	fx_open(x, back); /* down for 100 days: three periods missed */
	assert_int_equal(keys_list(x->k, back, &e, &n), 0);
	assert_true(e[0].overdue);
	assert_int_equal(e[0].age_s, 100 * DAY);
	free(e);
	assert_true(keys_next_due(x->k, back) <= back);
	x->n_recs = 0;
	assert_int_equal(keys_tick(x->k, back), 1); /* one pending version, no burst */
	assert_int_equal(count(x, MAS_MSGID_KEY_OVERDUE), 1);
	kid_at(x, "jwt", KEYS_PENDING, b);
	assert_int_equal(n_versions(x, "jwt"), 2);
	assert_string_equal(last(x, MAS_MSGID_KEY_DELIVERED)->reason, "catch-up");
	/* delivered first: still activates only after the lead */
	assert_int_equal(keys_next_due(x->k, back), back + LEAD);
	assert_int_equal(keys_tick(x->k, back + LEAD), 1);
	assert_int_equal(state_of(x, "jwt", b), KEYS_ACTIVE);
	assert_int_equal(keys_list(x->k, back + LEAD, &e, &n), 0);
	assert_false(e[0].overdue);
	assert_int_equal(e[0].next_rotation, back + LEAD + 30 * DAY);
	free(e);
	/* the previous version keeps its full window from the real switch */
	assert_int_equal(keys_next_due(x->k, back + LEAD), back + LEAD + 7 * DAY);
}

static void test_downtime_across_activation_and_window(void **state)
{
	struct fx *x = *state;
	uint64_t back = T0 + 45 * DAY; /* after activation and after the 7-day window */
	char a[20], b[20];

	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	keys_tick(x->k, T0 + 30 * DAY - LEAD);
	kid_at(x, "jwt", KEYS_PENDING, b);
	fx_open(x, back);
	x->n_recs = 0;
	assert_int_equal(keys_tick(x->k, back), 1); /* promote only */
	assert_int_equal(count(x, MAS_MSGID_KEY_OVERDUE), 1); /* activation was late */
	assert_int_equal(state_of(x, "jwt", b), KEYS_ACTIVE);
	/* tokens signed with a until masd came back stay verifiable for the full window */
	assert_int_equal(state_of(x, "jwt", a), KEYS_RETIRING);
	assert_int_equal(keys_next_due(x->k, back), back + 7 * DAY);
	assert_int_equal(keys_tick(x->k, back + 7 * DAY), 1);
	assert_int_equal((int)state_of(x, "jwt", a), -1);
}

static void test_rotate_on_demand(void **state)
{
	struct fx *x = *state;
	uint64_t t = T0 + 5 * DAY;
	char a[20], b[20], c[20];

	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	assert_int_equal(keys_rotate(x->k, "nope", t, 0), -ENOENT);
	assert_int_equal(keys_rotate(x->k, "jwt", t, 0), 0);
	kid_at(x, "jwt", KEYS_PENDING, b);
	assert_int_equal(strlen(b), KEYS_KID_LEN);
	assert_string_equal(last(x, MAS_MSGID_KEY_DELIVERED)->reason, "manual");
	assert_int_equal(keys_rotate(x->k, "jwt", t, 0), -EBUSY);
	assert_int_equal(keys_next_due(x->k, t), t + LEAD);
	/* IMMEDIATE promotes the pending one */
	assert_int_equal(keys_rotate(x->k, "jwt", t + 10, KEYS_ROTATE_IMMEDIATE), 0);
	assert_int_equal(state_of(x, "jwt", b), KEYS_ACTIVE);
	assert_int_equal(state_of(x, "jwt", a), KEYS_RETIRING);
	/* REVOKE: new active now, every previous version destroyed now */
	assert_int_equal(keys_rotate(x->k, "jwt", t + 20, KEYS_ROTATE_REVOKE), 0);
	kid_at(x, "jwt", KEYS_ACTIVE, c);
	assert_string_not_equal(c, b);
	assert_int_equal(n_versions(x, "jwt"), 1);
	assert_int_equal(count(x, MAS_MSGID_KEY_DESTROYED), 2);
	assert_false(exists("%s/keys/jwt/%s.secret", x->state, a));
	assert_false(exists("%s/keys/copywriter/jwt.%s.key", x->run, b));
	/* the schedule restarts from the manual activation */
	assert_int_equal(keys_next_due(x->k, t + 20), t + 20 + 30 * DAY - LEAD);
}

/* The audit-signing shape: ed25519, masd alone uses it (no lead), previous destroyed at once. */
static int before_cb(void *ud, const char *name, const struct keys_version_info *old_v,
		     const struct keys_version_info *new_v)
{
	struct fx *x = ud;

	x->before_calls++;
	snprintf(x->before_old, sizeof(x->before_old), "%s", old_v ? old_v->kid : "(null)");
	snprintf(x->before_new, sizeof(x->before_new), "%s", new_v->kid);
	assert_string_equal(name, "audit");
	assert_true(new_v->has_public); /* the writer signs the new public key with the old key */
	if (old_v) {
		struct keys_material m;

		assert_int_equal(old_v->state, KEYS_ACTIVE);
		assert_int_equal(keys_material_get(x->k, name, old_v->kid, &m), 0);
		keys_material_clear(&m);
	}
	return x->before_ret;
}

static void test_audit_signing_ring(void **state)
{
	struct fx *x = *state;
	struct keys_material m;
	struct keys_version_info *v;
	uint8_t pub[32];
	size_t n, plen = sizeof(pub);
	EVP_PKEY *pk;
	char a[20], b[20];

	x->conf[0].name = "audit";
	x->conf[0].type = MAS_KEY_ED25519;
	x->conf[0].rotate_every_s = DAY;
	x->conf[0].keep_previous_for_s = 0;
	x->conf[0].n_deliver_to = 0;
	fx_open(x, T0);
	keys_set_before_activate(x->k, before_cb, x);
	assert_int_equal(keys_tick(x->k, T0), 1);
	assert_int_equal(x->before_calls, 1);
	assert_string_equal(x->before_old, "(null)");
	kid_at(x, "audit", KEYS_ACTIVE, a);
	assert_int_equal(keys_next_due(x->k, T0), T0 + DAY); /* no lead */

	/* the material is the seed of the public key the ring reports */
	assert_int_equal(keys_material_get(x->k, "audit", NULL, &m), 0);
	assert_string_equal(m.kid, a);
	assert_int_equal(m.len, 32);
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, m.bytes, m.len);
	keys_material_clear(&m);
	assert_non_null(pk);
	assert_int_equal(EVP_PKEY_get_raw_public_key(pk, pub, &plen), 1);
	EVP_PKEY_free(pk);
	versions(x, "audit", &v, &n);
	assert_true(v[0].has_public);
	assert_memory_equal(v[0].public_key, pub, 32);
	free(v);

	/* the writer can refuse (e.g. checkpoint failed): nothing changes, retried next tick */
	x->before_ret = -EIO;
	assert_int_equal(keys_tick(x->k, T0 + DAY), -EIO);
	kid_at(x, "audit", KEYS_ACTIVE, b);
	assert_string_equal(a, b);
	x->before_ret = 0;
	assert_int_equal(keys_tick(x->k, T0 + DAY + 1), 2); /* create+promote, destroy */
	kid_at(x, "audit", KEYS_ACTIVE, b);
	assert_string_not_equal(a, b);
	assert_string_equal(x->before_old, a);
	assert_string_equal(x->before_new, b);
	/* keep_previous_for 0: the old private key is gone at once */
	assert_int_equal(n_versions(x, "audit"), 1);
	assert_int_equal(keys_material_get(x->k, "audit", a, &m), -ENOKEY);
	assert_false(exists("%s/keys/audit/%s.secret", x->state, a));
}

/* Point 7 end to end, as the audit writer would do it: before each activation, sign the new
 * public key with the old private key; a verifier holding only the first public key can then
 * follow the chain of keys. keep_previous_for 0: each old private key is erased at the switch. */
struct chain {
	struct mas_keys *k;
	uint8_t pubs[8][32];
	uint8_t sigs[8][64];
	size_t n;
};

static int chain_cb(void *ud, const char *name, const struct keys_version_info *old_v,
		    const struct keys_version_info *new_v)
{
	struct chain *c = ud;
	struct keys_material m;
	EVP_MD_CTX *md;
	EVP_PKEY *pk;
	size_t siglen = 64;

	if (!old_v) {
		memcpy(c->pubs[c->n++], new_v->public_key, 32);
		return 0;
	}
	assert_int_equal(keys_material_get(c->k, name, old_v->kid, &m), 0);
	pk = EVP_PKEY_new_raw_private_key(EVP_PKEY_ED25519, NULL, m.bytes, m.len);
	keys_material_clear(&m);
	md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestSignInit(md, NULL, NULL, NULL, pk), 1);
	assert_int_equal(EVP_DigestSign(md, c->sigs[c->n], &siglen, new_v->public_key, 32), 1);
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	memcpy(c->pubs[c->n++], new_v->public_key, 32);
	return 0;
}

static void test_audit_writer_key_chain(void **state)
{
	struct fx *x = *state;
	struct chain c = { 0 };

	x->conf[0].name = "audit";
	x->conf[0].type = MAS_KEY_ED25519;
	x->conf[0].rotate_every_s = DAY;
	x->conf[0].keep_previous_for_s = 0;
	x->conf[0].n_deliver_to = 0;
	fx_open(x, T0);
	c.k = x->k;
	keys_set_before_activate(x->k, chain_cb, &c);
	for (int d = 0; d < 4; d++)
		assert_true(keys_tick(x->k, T0 + (uint64_t)d * DAY) > 0);
	assert_int_equal(c.n, 4);
	assert_int_equal(n_versions(x, "audit"), 1); /* every old private key erased */
	for (size_t i = 1; i < c.n; i++) {
		EVP_PKEY *pk =
			EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, c.pubs[i - 1], 32);
		EVP_MD_CTX *md = EVP_MD_CTX_new();

		assert_int_equal(EVP_DigestVerifyInit(md, NULL, NULL, NULL, pk), 1);
		assert_int_equal(EVP_DigestVerify(md, c.sigs[i], 64, c.pubs[i], 32), 1);
		/* and a forged link fails */
		c.pubs[i][0] ^= 1;
		assert_int_not_equal(EVP_DigestVerify(md, c.sigs[i], 64, c.pubs[i], 32), 1);
		c.pubs[i][0] ^= 1;
		EVP_MD_CTX_free(md);
		EVP_PKEY_free(pk);
	}
}

static void test_never_rotating_key(void **state)
{
	struct fx *x = *state;
	struct keys_list_entry *e;
	size_t n;

	x->conf[0].type = MAS_KEY_AES256GCM;
	x->conf[0].rotate_every_s = 0;
	fx_open(x, T0);
	keys_tick(x->k, T0);
	assert_int_equal(keys_next_due(x->k, T0), KEYS_NEVER);
	assert_int_equal(keys_tick(x->k, T0 + 10000 * DAY), 0);
	assert_int_equal(keys_list(x->k, T0 + 10000 * DAY, &e, &n), 0);
	assert_false(e[0].overdue);
	assert_int_equal(e[0].next_rotation, KEYS_NEVER);
	free(e);
}

static void test_lead_clamped(void **state)
{
	struct fx *x = *state;

	x->conf[0].rotate_every_s = 600; /* lead 3600 > period/2 */
	fx_open(x, T0);
	keys_tick(x->k, T0);
	assert_int_equal(keys_next_due(x->k, T0), T0 + 300);
}

static void test_audit_sink_failure_retried(void **state)
{
	struct fx *x = *state;

	fx_open(x, T0);
	x->fail_next = 1;
	assert_int_equal(keys_tick(x->k, T0), -EIO);
	assert_int_equal(x->n_recs, 0);
	/* the version is committed; its records come on the next call, and again after a restart
	 * only if they were not emitted */
	assert_int_equal(n_versions(x, "jwt"), 1);
	fx_open(x, T0 + 1);
	assert_int_equal(count(x, MAS_MSGID_KEY_DELIVERED), 1);
	assert_int_equal(count(x, MAS_MSGID_KEY_ROTATED), 1);
	fx_open(x, T0 + 2);
	assert_int_equal(count(x, MAS_MSGID_KEY_ROTATED), 1);
}

static void test_failure_backoff_and_overdue(void **state)
{
	struct fx *x = *state;
	uint64_t due = T0 + DAY;

	x->conf[0].name = "audit";
	x->conf[0].type = MAS_KEY_ED25519;
	x->conf[0].rotate_every_s = DAY;
	x->conf[0].keep_previous_for_s = 0;
	x->conf[0].n_deliver_to = 0;
	fx_open(x, T0);
	keys_set_before_activate(x->k, before_cb, x);
	keys_tick(x->k, T0);
	x->before_ret = -EIO;
	assert_int_equal(keys_tick(x->k, due), -EIO);
	/* no busy loop: the timer waits for the retry delay */
	assert_int_equal(keys_next_due(x->k, due), due + 60);
	assert_int_equal(count(x, MAS_MSGID_KEY_OVERDUE), 0); /* within the grace */
	assert_int_equal(keys_tick(x->k, due + 61), -EIO);
	assert_int_equal(count(x, MAS_MSGID_KEY_OVERDUE), 1);
	assert_int_equal(keys_tick(x->k, due + 200), -EIO);
	assert_int_equal(count(x, MAS_MSGID_KEY_OVERDUE), 1); /* at most hourly */
	assert_int_equal(keys_tick(x->k, due + 61 + 3600), -EIO);
	assert_int_equal(count(x, MAS_MSGID_KEY_OVERDUE), 2);
	x->before_ret = 0;
	assert_int_equal(keys_overdue(x->k, due + 4000), 1);
	assert_true(keys_tick(x->k, due + 4000) > 0);
	assert_int_equal(keys_overdue(x->k, due + 4000), 0);
	assert_int_equal(keys_next_due(x->k, due + 4000), due + 4000 + DAY);
}

static void test_redelivery_audited(void **state)
{
	struct fx *x = *state;
	char path[PATH_MAX], a[20];

	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	keys_close(x->k);
	x->k = NULL;
	snprintf(path, sizeof(path), "%s/keys", x->run);
	rm_rf(path); /* /run is a tmpfs: empty after a reboot */
	x->n_recs = 0;
	fx_open(x, T0 + 10);
	assert_true(exists("%s/keys/copywriter/jwt.%s.key", x->run, a));
	assert_true(exists("%s/keys/copywriter/jwt.current", x->run));
	assert_int_equal(count(x, MAS_MSGID_KEY_DELIVERED), 1);
	assert_string_equal(last(x, MAS_MSGID_KEY_DELIVERED)->reason, "redelivery");
	x->n_recs = 0;
	fx_open(x, T0 + 20); /* nothing missing: nothing to say */
	assert_int_equal(x->n_recs, 0);
}

/* The fingerprint lets an agent check it holds the right key without revealing it:
 * HMAC-SHA256(key, "masd key fingerprint v1"), first 16 bytes in hex; never the key itself. */
static void test_fingerprint_is_a_commitment(void **state)
{
	struct fx *x = *state;
	static const char label[] = "masd key fingerprint v1";
	struct keys_version_info *v;
	struct keys_material m;
	unsigned char md[32];
	unsigned len = 0;
	char hexmd[65], hexkey[65];
	size_t n;

	fx_open(x, T0);
	keys_tick(x->k, T0);
	versions(x, "jwt", &v, &n);
	assert_int_equal(keys_material_get(x->k, "jwt", v[0].kid, &m), 0);
	assert_non_null(HMAC(EVP_sha256(), m.bytes, (int)m.len, (const unsigned char *)label,
			     sizeof(label) - 1, md, &len));
	for (size_t i = 0; i < 32; i++) {
		sprintf(hexmd + 2 * i, "%02x", md[i]);
		sprintf(hexkey + 2 * i, "%02x", m.bytes[i]);
	}
	keys_material_clear(&m);
	assert_memory_equal(v[0].fingerprint, hexmd, KEYS_FPR_LEN);
	assert_null(strstr(hexkey, v[0].fingerprint));
	assert_null(strstr(hexkey, v[0].kid));
	free(v);
}

static void test_version_cap(void **state)
{
	struct fx *x = *state;
	int r = 0, i;

	fx_open(x, T0);
	keys_tick(x->k, T0);
	/* every rotation keeps the previous for 7 days: the ring fills up, then refuses */
	for (i = 1; i < 400 && r == 0; i++) {
		x->n_recs = 0;
		r = keys_rotate(x->k, "jwt", T0 + (uint64_t)i, KEYS_ROTATE_IMMEDIATE);
	}
	assert_int_equal(r, -ENOSPC);
	assert_true(n_versions(x, "jwt") >= 250);
	x->n_recs = 0;
	fx_open(x, T0 + 500); /* and the state still loads */
	x->n_recs = 0;
	assert_int_equal(keys_tick(x->k, T0 + 8 * DAY), 1);
	assert_int_equal(n_versions(x, "jwt"), 1);
	assert_int_equal(count(x, MAS_MSGID_KEY_DESTROYED), x->n_recs);
}

/* ---- listing ---- */

static void test_list_and_format(void **state)
{
	struct fx *x = *state;
	struct keys_list_entry *e;
	char *buf = NULL, a[20];
	size_t n, len = 0;
	FILE *f;

	x->conf[1] = x->conf[0];
	x->conf[1].name = "storage";
	x->conf[1].type = MAS_KEY_AES256GCM;
	x->conf[1].rotate_every_s = 90 * DAY;
	x->n_conf = 2;
	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	assert_int_equal(keys_list(x->k, T0 + 2 * DAY, &e, &n), 0);
	assert_int_equal(n, 2);
	assert_string_equal(e[0].name, "jwt");
	assert_int_equal(e[0].type, MAS_KEY_HS256);
	assert_string_equal(e[0].active_kid, a);
	assert_int_equal(e[0].age_s, 2 * DAY);
	assert_int_equal(e[0].next_rotation, T0 + 30 * DAY);
	assert_false(e[0].overdue);
	assert_string_equal(e[1].name, "storage");

	f = open_memstream(&buf, &len);
	assert_int_equal(keys_cli_format(f, e, n, T0 + 2 * DAY, KEYS_FORMAT_JSON), 0);
	fclose(f);
	assert_non_null(strstr(buf, "\"name\":\"jwt\",\"type\":\"hs256\",\"active_kid\":\""));
	assert_non_null(strstr(buf, "\"overdue\":false"));
	assert_non_null(strstr(buf, "\"type\":\"aes-256-gcm\""));
	assert_non_null(strstr(buf, a));
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &len);
	assert_int_equal(keys_cli_format(f, e, n, T0 + 2 * DAY, 0), 0);
	fclose(f);
	assert_non_null(strstr(buf, "NAME"));
	assert_non_null(strstr(buf, "2d0h"));
	assert_non_null(strstr(buf, "ok"));
	free(buf);
	free(e);

	/* overdue shows up once the active version outlives its period (masd stopped) */
	assert_int_equal(keys_list(x->k, T0 + 31 * DAY, &e, &n), 0);
	assert_true(e[0].overdue);
	buf = NULL;
	f = open_memstream(&buf, &len);
	keys_cli_format(f, e, n, T0 + 31 * DAY, 0);
	fclose(f);
	assert_non_null(strstr(buf, "OVERDUE"));
	free(buf);
	free(e);
}

/* ---- delivery content (permissions as another uid: tests/integration/test_keys_delivery) ---- */

static void test_delivery_files(void **state)
{
	struct fx *x = *state;
	char path[PATH_MAX], a[20], link[64], *idx = NULL, *key = NULL;
	struct keys_material m;
	unsigned char b64[64];
	struct stat st;
	size_t len;
	ssize_t ln;

	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	snprintf(path, sizeof(path), "%s/keys/copywriter/jwt.%s.key", x->run, a);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0400);
	assert_int_equal(fileio_read_all(path, 4096, &key, &len), 0);
	assert_int_equal(keys_material_get(x->k, "jwt", NULL, &m), 0);
	assert_int_equal(EVP_EncodeBlock(b64, m.bytes, (int)m.len), 44);
	keys_material_clear(&m);
	assert_int_equal(len, 44);
	assert_memory_equal(key, b64, 44); /* base64, no newline */
	snprintf(path, sizeof(path), "%s/keys/copywriter/index.json", x->run);
	assert_int_equal(fileio_read_all(path, 65536, &idx, &len), 0);
	assert_non_null(strstr(idx, a));
	assert_non_null(strstr(idx, "\"state\":\"active\""));
	assert_null(strstr(idx, (char *)b64)); /* never the material */
	assert_null(strstr(idx, key));
	free(idx);
	free(key);
	snprintf(path, sizeof(path), "%s/keys/copywriter/jwt.current", x->run);
	ln = readlink(path, link, sizeof(link) - 1);
	assert_true(ln > 0);
	link[ln] = '\0';
	snprintf(path, sizeof(path), "jwt.%s.key", a);
	assert_string_equal(link, path);
	snprintf(path, sizeof(path), "%s/keys/copywriter", x->run);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700); /* no user: owner-only */
	OPENSSL_cleanse(b64, sizeof(b64));
}

static void test_ed25519_delivery_pem(void **state)
{
	struct fx *x = *state;
	char path[PATH_MAX], a[20], *pem = NULL;
	size_t len;

	x->conf[0].name = "sign";
	x->conf[0].type = MAS_KEY_ED25519;
	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "sign", KEYS_ACTIVE, a);
	snprintf(path, sizeof(path), "%s/keys/copywriter/sign.%s.key", x->run, a);
	assert_int_equal(fileio_read_all(path, 4096, &pem, &len), 0);
	assert_non_null(strstr(pem, "-----BEGIN PRIVATE KEY-----"));
	free(pem);
	snprintf(path, sizeof(path), "%s/keys/copywriter/sign.%s.pub", x->run, a);
	assert_int_equal(fileio_read_all(path, 4096, &pem, &len), 0);
	assert_non_null(strstr(pem, "-----BEGIN PUBLIC KEY-----"));
	free(pem);
}

/* ---- reconciliation and malformed state ---- */

static void write_file(const char *path, const char *s)
{
	assert_int_equal(fileio_write_atomic(path, s, strlen(s), 0600, (uid_t)-1, (gid_t)-1), 0);
}

static void test_reconcile_leftovers(void **state)
{
	struct fx *x = *state;
	char path[PATH_MAX], a[20], b[20];

	fx_open(x, T0);
	keys_tick(x->k, T0);
	kid_at(x, "jwt", KEYS_ACTIVE, a);
	keys_close(x->k);
	x->k = NULL;
	/* a temp file from a write interrupted before rename, an orphaned secret (created but
	 * never committed), stray files in the agent's directory */
	snprintf(path, sizeof(path), "%s/keys/jwt/state.tmp.4242", x->state);
	write_file(path, "masd-keys 1\nname jw");
	snprintf(path, sizeof(path), "%s/keys/jwt/0123456789abcdef.secret", x->state);
	write_file(path, "0123456789abcdef0123456789abcdef");
	snprintf(path, sizeof(path), "%s/keys/copywriter/index.json.tmp.77", x->run);
	write_file(path, "{");
	snprintf(path, sizeof(path), "%s/keys/copywriter/jwt.0123456789abcdef.key", x->run);
	write_file(path, "stale");
	snprintf(path, sizeof(path), "%s/keys/ghost", x->run); /* an agent no longer configured */
	assert_int_equal(mkdir(path, 0700), 0);
	fx_open(x, T0 + 1);
	assert_false(exists("%s/keys/jwt/state.tmp.4242", x->state));
	assert_false(exists("%s/keys/jwt/0123456789abcdef.secret", x->state));
	assert_false(exists("%s/keys/copywriter/index.json.tmp.77", x->run));
	assert_false(exists("%s/keys/copywriter/jwt.0123456789abcdef.key", x->run));
	assert_false(exists("%s/keys/ghost", x->run));
	kid_at(x, "jwt", KEYS_ACTIVE, b);
	assert_string_equal(a, b);

	/* a committed version whose secret vanished: destroyed (audited), replaced on tick */
	keys_close(x->k);
	x->k = NULL;
	snprintf(path, sizeof(path), "%s/keys/jwt/%s.secret", x->state, a);
	assert_int_equal(unlink(path), 0);
	x->n_recs = 0;
	fx_open(x, T0 + 2);
	assert_int_equal(count(x, MAS_MSGID_KEY_DESTROYED), 1);
	assert_string_equal(last(x, MAS_MSGID_KEY_DESTROYED)->reason, "missing-secret");
	assert_false(exists("%s/keys/copywriter/jwt.%s.key", x->run, a));
	assert_int_equal(keys_tick(x->k, T0 + 2), 1);
	kid_at(x, "jwt", KEYS_ACTIVE, b);
	assert_string_not_equal(a, b);
	assert_string_equal(last(x, MAS_MSGID_KEY_ROTATED)->reason, "recovery");

	/* a secret file replaced by other bytes of the right size: detected by its fingerprint */
	keys_close(x->k);
	x->k = NULL;
	snprintf(path, sizeof(path), "%s/keys/jwt/%s.secret", x->state, b);
	write_file(path, "0123456789abcdef0123456789abcdef");
	x->n_recs = 0;
	fx_open(x, T0 + 3);
	assert_int_equal(count(x, MAS_MSGID_KEY_DESTROYED), 1);
	assert_string_equal(last(x, MAS_MSGID_KEY_DESTROYED)->reason, "bad-secret");
	assert_int_equal(n_versions(x, "jwt"), 0);
}

static const char *const bad_states[] = {
	"",
	"masd-keys 1",
	"masd-keys 2\nname jwt\ntype hs256\nnext_seq 2\n",
	"masd-keys 1\nname other\ntype hs256\nnext_seq 2\n",
	"masd-keys 1\nname jwt\ntype aes-256-gcm\nnext_seq 2\n",
	"masd-keys 1\nname jwt\ntype rsa\nnext_seq 2\n",
	"masd-keys 1\nname jwt\ntype hs256\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 0\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nbogus line\n",
	"masd-keys 1\nname jwt\nname jwt\ntype hs256\nnext_seq 2\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 00112233 active 1 1 0 3 initial - "
	"00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 shiny 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active x 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active "
	"99999999999999999999999 1 0 3 initial - 00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeZZ -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff 00\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 1\nv 1 0011223344556677 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 3\nv 1 0011223344556677 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -\nv 2 0011223344556688 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 3\nv 1 0011223344556677 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -\nv 2 0011223344556677 retiring 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active 1 1 0 3 "
	"initial - 00112233445566778899aabbccddeeff -", /* torn: no final newline */
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active 1 1 0 9 "
	"initial - 00112233445566778899aabbccddeeff -\n",
	"masd-keys 1\nname jwt\ntype hs256\nnext_seq 2\nv 1 0011223344556677 active 1 1 0 3 "
	"../../x - 00112233445566778899aabbccddeeff -\n",
};

static void test_malformed_state_refused(void **state)
{
	struct fx *x = *state;
	char path[PATH_MAX], dir[256];

	x->o.n_keys = 1;
	snprintf(dir, sizeof(dir), "%s/keys/jwt", x->state);
	assert_int_equal(fileio_mkdir_p(dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/state", dir);
	for (size_t i = 0; i < sizeof(bad_states) / sizeof(bad_states[0]); i++) {
		struct mas_error err = { 0 };
		struct mas_keys *k = NULL;
		char *after = NULL;
		size_t len;

		write_file(path, bad_states[i]);
		x->n_recs = 0;
		if (keys_open(&x->o, T0, &k, &err) != -EBADMSG)
			fail_msg("bad state %zu accepted", i);
		assert_null(k);
		assert_non_null(strstr(err.msg, "keys/jwt/state:"));
		assert_int_equal(x->n_recs, 0);
		/* refused means untouched */
		assert_int_equal(fileio_read_all(path, 65536, &after, &len), 0);
		assert_string_equal(after, bad_states[i]);
		free(after);
	}
	/* a NUL byte */
	{
		struct mas_error err = { 0 };
		struct mas_keys *k = NULL;
		static const char nul[] = "masd-keys 1\nname jwt\0\ntype hs256\nnext_seq 1\n";

		assert_int_equal(
			fileio_write_atomic(path, nul, sizeof(nul) - 1, 0600, (uid_t)-1, (gid_t)-1),
			0);
		assert_int_equal(keys_open(&x->o, T0, &k, &err), -EBADMSG);
	}
}

/* masd's audit key: an instance without a runtime dir delivers nothing and needs no agents; a
 * deliver_to there is refused. */
static void test_undelivered_instance(void **state)
{
	struct fx *x = *state;
	struct keys_version_info *v = NULL;
	struct mas_error err = { 0 };
	struct mas_keys *k = NULL;
	size_t n = 0;

	x->conf[0].name = "audit";
	x->conf[0].type = MAS_KEY_ED25519;
	x->conf[0].rotate_every_s = DAY;
	x->conf[0].keep_previous_for_s = 0;
	x->o.runtime_dir = NULL;
	x->o.n_agents = 0;
	x->o.n_keys = 1;
	assert_int_equal(keys_open(&x->o, T0, &k, &err), -EINVAL); /* deliver_to, no agents */
	x->conf[0].n_deliver_to = 0;
	x->n_conf = 1;
	fx_open(x, T0);
	assert_int_equal(keys_tick(x->k, T0), 1);
	assert_int_equal(keys_tick(x->k, T0 + DAY), 3); /* create, activate (no lead), destroy */
	versions(x, "audit", &v, &n);
	assert_int_equal(n, 1);
	assert_int_equal(v[0].state, KEYS_ACTIVE);
	assert_true(v[0].has_public);
	free(v);
	assert_int_equal(access(x->run, F_OK), -1); /* nothing under a runtime dir */
}

static void test_bad_config_refused(void **state)
{
	struct fx *x = *state;
	struct mas_error err = { 0 };
	struct mas_keys *k = NULL;

	x->conf[0].name = "../etc";
	x->o.n_keys = 1;
	assert_int_equal(keys_open(&x->o, T0, &k, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "key name"));
	x->conf[0].name = "jwt";
	x->deliver[0] = 7;
	assert_int_equal(keys_open(&x->o, T0, &k, &err), -EINVAL);
	x->deliver[0] = 0;
	x->conf[1] = x->conf[0];
	x->o.n_keys = 2;
	assert_int_equal(keys_open(&x->o, T0, &k, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "twice"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_rollover, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_keeps_schedule, setup, teardown),
		cmocka_unit_test_setup_teardown(test_catch_up_after_downtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_downtime_across_activation_and_window, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_rotate_on_demand, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_signing_ring, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_writer_key_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_rotating_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lead_clamped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_audit_sink_failure_retried, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_backoff_and_overdue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_redelivery_audited, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fingerprint_is_a_commitment, setup, teardown),
		cmocka_unit_test_setup_teardown(test_version_cap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list_and_format, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ed25519_delivery_pem, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_leftovers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed_state_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_undelivered_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_config_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
