/* SPDX-License-Identifier: GPL-2.0-only */
/* libFuzzer: the key-state loader. The input's first byte picks the key type, the rest is
 * written as STATE/keys/k/state and keys_open loads it (refusing or reconciling); the state
 * directory is emptied after each run. */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fileio.h"
#include "keys.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char root[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	if (ftw->level > 0)
		remove(path);
	return 0;
}

static int no_audit(void *userdata, const char *message_id, int priority, const char *message,
		    const struct audit_field *f, size_t n)
{
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum mas_key_type types[] = { MAS_KEY_HS256, MAS_KEY_AES256GCM,
						   MAS_KEY_ED25519 };
	char state[128], run[128], dir[160], path[192];
	struct mas_key_conf conf = { .name = "k", .rotate_every_s = 86400 };
	struct keys_options o = { 0 };
	struct mas_keys *k = NULL;
	struct mas_error err = { 0 };
	FILE *f;

	if (size < 1)
		return 0;
	if (!root[0]) {
		snprintf(root, sizeof(root), "/tmp/fuzz-keys.XXXXXX");
		if (!mkdtemp(root))
			abort();
	}
	conf.type = types[data[0] % 3];
	snprintf(state, sizeof(state), "%s/state", root);
	snprintf(run, sizeof(run), "%s/run", root);
	snprintf(dir, sizeof(dir), "%s/keys/k", state);
	if (fileio_mkdir_p(dir, 0700) < 0)
		abort();
	snprintf(path, sizeof(path), "%s/state", dir);
	f = fopen(path, "we");
	if (!f)
		abort();
	fwrite(data + 1, 1, size - 1, f);
	fclose(f);
	o.state_dir = state;
	o.runtime_dir = run;
	o.keys = &conf;
	o.n_keys = 1;
	o.audit = no_audit;
	if (keys_open(&o, 1700000000, &k, &err) == 0) {
		keys_tick(k, 1700000000);
		keys_close(k);
	}
	nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
