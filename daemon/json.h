/* SPDX-License-Identifier: GPL-2.0-only */
/* A streaming JSON writer for masctl's --json output: one document on a FILE. */
#ifndef MAS_JSON_H
#define MAS_JSON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 16

struct json {
	FILE *f;
	int depth;
	bool first[JSON_MAX_DEPTH];
	char closer[JSON_MAX_DEPTH]; /* what closes each open level */
};

void json_begin(struct json *j, FILE *f);
void json_object(struct json *j, const char *key); /* key NULL inside arrays or at the top */
void json_array(struct json *j, const char *key);
void json_end(struct json *j); /* closes the innermost object or array */
void json_string(struct json *j, const char *key, const char *value); /* NULL writes null */
void json_uint(struct json *j, const char *key, uint64_t value);
void json_int(struct json *j, const char *key, int64_t value);
void json_bool(struct json *j, const char *key, bool value);
void json_finish(struct json *j); /* newline after the document */

#endif
