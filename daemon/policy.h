/* SPDX-License-Identifier: GPL-2.0-only */
/* The policy: CONTRACT.md's YAML format parsed and validated into plain structs.
 * Parsing is pure: no kernel, no network; host names stay names until the resolver. */
#ifndef MAS_POLICY_H
#define MAS_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAS_POLICY_MAX_BYTES (4u << 20) /* a larger file is refused before it is parsed */
#define MAS_ERR_MAX 512

/* Where a node stands in its file, 1-based. */
struct mas_pos {
	unsigned line;
	unsigned col;
};

/* The first error found; message reads "FILE:LINE:COL: KEY: found X, expected Y". */
struct mas_error {
	char msg[MAS_ERR_MAX];
	unsigned line;
	unsigned col;
};

enum mas_policy_mode {
	MAS_POLICY_ENFORCE = 0,
	MAS_POLICY_AUDIT = 1,
	MAS_POLICY_INHERIT = 2, /* an agent without its own mode takes the global one */
};

struct mas_cidr {
	int family; /* AF_INET or AF_INET6; a v4-mapped IPv6 prefix is stored as AF_INET */
	uint8_t addr[16]; /* network byte order, host bits zero */
	uint8_t prefixlen;
};

struct mas_port_range {
	uint16_t lo;
	uint16_t hi; /* inclusive */
};

struct mas_destination {
	char *name;
	char **hosts;
	size_t n_hosts;
	struct mas_cidr *cidrs;
	size_t n_cidrs;
	struct mas_port_range *ports; /* none: any port */
	size_t n_ports;
	unsigned protocols; /* MAS_PROTO_* of bpf/mas_abi.h; default TCP */
	int class_idx; /* index into rate_limits, -1 for none */
	bool protected_;
	uint32_t max_connections; /* 0: no cap */
	struct mas_pos pos;
};

struct mas_rate_class {
	char *name;
	uint32_t requests_per_minute;
	uint32_t burst_size;
	uint64_t bytes_per_second; /* 0: no bandwidth budget */
	uint64_t burst_bytes;
	struct mas_pos pos;
};

/* A permission: the destinations it lets an agent reach. */
struct mas_permission {
	char *name;
	size_t *dests; /* indexes into destinations */
	size_t n_dests;
	struct mas_pos pos;
};

struct mas_role {
	char *name;
	bool all; /* "all": every destination, every masctl command */
	size_t *perms; /* indexes into permissions */
	size_t n_perms;
	struct mas_pos pos;
};

struct mas_agent {
	char *name;
	char *unit; /* exactly one of unit and cgroup is set */
	char *cgroup; /* relative to the cgroup2 mount */
	char *user; /* service user, may be NULL */
	size_t role; /* index into roles */
	size_t *allow; /* indexes into destinations */
	size_t n_allow;
	enum mas_policy_mode mode;
	struct mas_pos pos;
};

enum mas_principal_kind {
	MAS_PRINCIPAL_UID,
	MAS_PRINCIPAL_GID,
};

/* "uid:0", "uid:NAME", "group:NAME", "gid:N": resolved to numbers at parse time where the name
 * exists on this host; an unknown user or group name is an error. */
struct mas_principal {
	enum mas_principal_kind kind;
	uint32_t id;
	char *text; /* as written */
};

struct mas_control_grant {
	size_t role; /* index into roles */
	struct mas_principal *principals;
	size_t n_principals;
	struct mas_pos pos;
};

#define MAS_AUDIT_AI_REQUESTS 0x1
#define MAS_AUDIT_AUTHENTICATION 0x2
#define MAS_AUDIT_DATA_CHANGES 0x4
#define MAS_AUDIT_AGENT_ACTIONS 0x8

struct mas_audit_conf {
	bool present;
	bool enabled;
	bool signed_logs;
	uint32_t retention_days;
	unsigned include; /* MAS_AUDIT_* */
	uint32_t
		checkpoint_records; /* extension: sign a checkpoint every N records (default 256) */
	uint32_t checkpoint_seconds; /* extension: ... or every T seconds (default 5) */
	uint64_t flow_interval_s; /* extension: one flow summary per flow per interval (60) */
	bool allowed_events_all; /* extension: every allowed decision an event, not the first
				    of each flow per interval (allowed_events: all | new_flows) */
};

/* extension: which DNS server masd asks for the destinations' host names, and how long an
 * address that dropped out of the answers stays allowed. */
struct mas_resolver_conf {
	bool has_server; /* false: the host's resolver (/etc/resolv.conf) */
	uint8_t server[4]; /* IPv4, network byte order */
	uint16_t port; /* host byte order, 53 by default */
	uint64_t grace_s; /* default 300 */
};

enum mas_key_type {
	MAS_KEY_HS256,
	MAS_KEY_AES256GCM,
	MAS_KEY_ED25519,
};

/* The keyring of masd's own audit signing key (keys.c, run by audit.c on its own schedule): a
 * policy key cannot take its name, which is also its directory under STATE/keys. */
#define MAS_AUDIT_KEY_NAME "audit"

struct mas_key_conf {
	char *name;
	enum mas_key_type type;
	uint64_t rotate_every_s; /* "30d", "12h", "90m", "45s"; 0 never */
	uint64_t keep_previous_for_s;
	size_t *deliver_to; /* indexes into agents */
	size_t n_deliver_to;
	struct mas_pos pos;
};

struct mas_policy {
	char *file; /* the name errors use */
	unsigned version;
	enum mas_policy_mode mode; /* ENFORCE or AUDIT */
	struct mas_destination *destinations;
	size_t n_destinations;
	struct mas_rate_class *rate_limits;
	size_t n_rate_limits;
	struct mas_permission *permissions;
	size_t n_permissions;
	struct mas_role *roles;
	size_t n_roles;
	struct mas_agent *agents;
	size_t n_agents;
	struct mas_control_grant *control;
	size_t n_control;
	struct mas_audit_conf audit;
	struct mas_key_conf *keys;
	size_t n_keys;
	struct mas_resolver_conf resolver;
};

/* Parse and validate. On success returns 0 and *ret_policy; on failure a negative errno
 * (-EINVAL for an invalid policy, -ENOENT etc. for I/O) with err filled in. */
int policy_parse_file(const char *path, struct mas_policy **ret_policy, struct mas_error *err);
int policy_parse_buffer(const char *buf, size_t len, const char *name,
			struct mas_policy **ret_policy, struct mas_error *err);
void policy_free(struct mas_policy *p);

/* A duration as the policy writes one ("30d", "12h", "1d12h", "45s"): true and seconds (>= 1). */
bool policy_parse_duration(const char *s, uint64_t *ret);

/* Index lookups by name; -1 when absent. */
int policy_find_destination(const struct mas_policy *p, const char *name);
int policy_find_agent(const struct mas_policy *p, const char *name);
int policy_find_key(const struct mas_policy *p, const char *name);

/* Whether agent a is granted destination d: through its role's permissions, "all", or allow. */
bool policy_agent_granted(const struct mas_policy *p, size_t a, size_t d);

/* The agent's effective mode: its own, else the policy's. */
enum mas_policy_mode policy_agent_mode(const struct mas_policy *p, size_t a);

static inline void policy_freep(struct mas_policy **p)
{
	policy_free(*p);
}

#endif
