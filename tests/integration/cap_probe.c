/* SPDX-License-Identifier: GPL-2.0-only */
/* Probes which bpf() operations masd's capability set allows: every kind of map masd creates,
 * a cgroup/connect4 and a cgroup/sock_create program, a cgroup link, pinning and re-opening it.
 * usage: cap_probe CGROUP_DIR BPFFS_DIR [MOUNT_DIR]; prints one "step: ok|errno" line per step
 * and exits 0 only if every step but the mount succeeded (the mount is reported, not required). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <unistd.h>
#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>

#define INSN(c, d, s, o, i) \
	((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })
#define MOV64_IMM(d, i) INSN(BPF_ALU64 | BPF_MOV | BPF_K, d, 0, 0, i)
#define MOV64_REG(d, s) INSN(BPF_ALU64 | BPF_MOV | BPF_X, d, s, 0, 0)
#define ADD64_IMM(d, i) INSN(BPF_ALU64 | BPF_ADD | BPF_K, d, 0, 0, i)
#define LDX_W(d, s, o) INSN(BPF_LDX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_W(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_W, d, s, o, 0)
#define STX_DW(d, s, o) INSN(BPF_STX | BPF_MEM | BPF_DW, d, s, o, 0)
#define ST_W(d, o, i) INSN(BPF_ST | BPF_MEM | BPF_W, d, 0, o, i)
#define LD_MAP_FD(d, fd) \
	INSN(BPF_LD | BPF_DW | BPF_IMM, d, BPF_PSEUDO_MAP_FD, 0, fd), INSN(0, 0, 0, 0, 0)
#define CALL(f) INSN(BPF_JMP | BPF_CALL, 0, 0, 0, f)
#define EXIT() INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0)

static int failures;

static int report(const char *step, int r)
{
	if (r < 0)
		failures++;
	printf("%-28s %s\n", step, r < 0 ? strerror(-r) : "ok");
	return r;
}

/* libbpf 1.x returns -errno from its low-level wrappers. */
static int check(const char *step, int r)
{
	return report(step, r < 0 ? -errno : r);
}

/* A BTF blob with one int type, as a skeleton's object would load, for map types needing BTF. */
static int load_btf(void)
{
	struct btf *btf = btf__new_empty();
	int r;

	if (!btf)
		return -errno;
	btf__add_int(btf, "int", 4, BTF_INT_SIGNED);
	r = btf__load_into_kernel(btf);
	r = r < 0 ? r : btf__fd(btf);
	if (r >= 0)
		r = dup(r);
	btf__free(btf);
	return r;
}

int main(int argc, char **argv)
{
	LIBBPF_OPTS(bpf_map_create_opts, lpm_opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_map_create_opts, outer_opts);
	LIBBPF_OPTS(bpf_map_create_opts, sk_opts, .map_flags = BPF_F_NO_PREALLOC);
	LIBBPF_OPTS(bpf_prog_load_opts, addr_opts,
		    .expected_attach_type = BPF_CGROUP_INET4_CONNECT);
	LIBBPF_OPTS(bpf_prog_load_opts, sock_opts,
		    .expected_attach_type = BPF_CGROUP_INET_SOCK_CREATE);
	char log[4096], path[512];
	int lpm, inner, outer, ring, sk, btf, prog, sprog, cg, link, fd;
	__u32 key[2] = { 32, 0x0100007f }, val = 1;
	void *page;

	if (argc < 3) {
		fprintf(stderr, "usage: %s CGROUP_DIR BPFFS_DIR [MOUNT_DIR]\n", argv[0]);
		return 2;
	}
	addr_opts.log_buf = log;
	addr_opts.log_size = sizeof(log);

	lpm = check("map lpm_trie",
		    bpf_map_create(BPF_MAP_TYPE_LPM_TRIE, "mas_probe_lpm", 8, 4, 1024, &lpm_opts));
	if (lpm >= 0)
		check("map update", bpf_map_update_elem(lpm, key, &val, BPF_ANY));
	inner = check("map array (inner)",
		      bpf_map_create(BPF_MAP_TYPE_ARRAY, "mas_probe_in", 4, 4, 16, NULL));
	outer_opts.inner_map_fd = inner;
	outer = check("map array_of_maps", bpf_map_create(BPF_MAP_TYPE_ARRAY_OF_MAPS,
							  "mas_probe_out", 4, 4, 2, &outer_opts));
	if (outer >= 0) {
		__u32 k = 0, v = inner;

		check("map-in-map flip", bpf_map_update_elem(outer, &k, &v, BPF_ANY));
	}
	ring = check("map ringbuf",
		     bpf_map_create(BPF_MAP_TYPE_RINGBUF, "mas_probe_rb", 0, 0, 1 << 16, NULL));
	if (ring >= 0) {
		page = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE, MAP_SHARED, ring, 0);
		report("ringbuf mmap consumer", page == MAP_FAILED ? -errno : 0);
	}
	btf = check("btf load", load_btf());
	if (btf >= 0) {
		sk_opts.btf_fd = btf;
		sk_opts.btf_key_type_id = 1;
		sk_opts.btf_value_type_id = 1;
		sk = check("map sk_storage", bpf_map_create(BPF_MAP_TYPE_SK_STORAGE, "mas_probe_sk",
							    4, 4, 0, &sk_opts));
		(void)sk;
	}

	/* connect4: look the destination up in the trie, emit the cgroup id, allow. */
	{
		struct bpf_insn insns[] = {
			MOV64_REG(BPF_REG_6, BPF_REG_1),
			CALL(BPF_FUNC_get_current_cgroup_id),
			STX_DW(BPF_REG_10, BPF_REG_0, -8),
			ST_W(BPF_REG_10, -16, 32),
			LDX_W(BPF_REG_0, BPF_REG_6, offsetof(struct bpf_sock_addr, user_ip4)),
			STX_W(BPF_REG_10, BPF_REG_0, -12),
			LD_MAP_FD(BPF_REG_1, lpm),
			MOV64_REG(BPF_REG_2, BPF_REG_10),
			ADD64_IMM(BPF_REG_2, -16),
			CALL(BPF_FUNC_map_lookup_elem),
			LD_MAP_FD(BPF_REG_1, ring),
			MOV64_REG(BPF_REG_2, BPF_REG_10),
			ADD64_IMM(BPF_REG_2, -8),
			MOV64_IMM(BPF_REG_3, 8),
			MOV64_IMM(BPF_REG_4, 0),
			CALL(BPF_FUNC_ringbuf_output),
			MOV64_IMM(BPF_REG_0, 1),
			EXIT(),
		};

		log[0] = 0;
		prog = check("prog cgroup/connect4",
			     bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "mas_probe_c4", "GPL",
					   insns, sizeof(insns) / sizeof(insns[0]), &addr_opts));
		if (prog < 0 && log[0])
			fprintf(stderr, "verifier: %s\n", log);
	}
	/* Half of the key left uninitialised, as padding in a C struct on the stack would be: only
	 * a loader with CAP_PERFMON may pass uninitialised stack to a helper. */
	{
		struct bpf_insn insns[] = {
			ST_W(BPF_REG_10, -16, 32),
			LD_MAP_FD(BPF_REG_1, lpm),
			MOV64_REG(BPF_REG_2, BPF_REG_10),
			ADD64_IMM(BPF_REG_2, -16),
			CALL(BPF_FUNC_map_lookup_elem),
			MOV64_IMM(BPF_REG_0, 1),
			EXIT(),
		};

		fd = check("prog with padded stack key",
			   bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK_ADDR, "mas_probe_pad", "GPL",
					 insns, sizeof(insns) / sizeof(insns[0]), &addr_opts));
		if (fd >= 0)
			close(fd);
	}
	{
		struct bpf_insn insns[] = { MOV64_IMM(BPF_REG_0, 1), EXIT() };

		sprog = check("prog cgroup/sock_create",
			      bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK, "mas_probe_sc", "GPL", insns,
					    2, &sock_opts));
	}

	cg = open(argv[1], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	report("open cgroup dir", cg < 0 ? -errno : 0);
	link = -1;
	if (cg >= 0 && prog >= 0)
		link = check("link_create cgroup",
			     bpf_link_create(prog, cg, BPF_CGROUP_INET4_CONNECT, NULL));
	if (cg >= 0 && sprog >= 0)
		check("prog_attach allow_multi",
		      bpf_prog_attach(sprog, cg, BPF_CGROUP_INET_SOCK_CREATE, BPF_F_ALLOW_MULTI));

	snprintf(path, sizeof(path), "%s/probe_link", argv[2]);
	if (link >= 0 && check("pin link", bpf_obj_pin(link, path)) == 0) {
		fd = check("get pinned link", bpf_obj_get(path));
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/probe_map", argv[2]);
	if (lpm >= 0 && check("pin map", bpf_obj_pin(lpm, path)) == 0) {
		fd = check("get pinned map", bpf_obj_get(path));
		if (fd >= 0)
			close(fd);
		unlink(path);
	}
	if (cg >= 0 && sprog >= 0)
		bpf_prog_detach2(sprog, cg, BPF_CGROUP_INET_SOCK_CREATE);

	/* Reaching a map by id (BPF_MAP_GET_FD_BY_ID) needs CAP_SYS_ADMIN: masd must reopen what it
	 * adopts after a restart through pins in bpffs, never by id. Reported, not required. */
	if (inner >= 0) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);
		int r = bpf_obj_get_info_by_fd(inner, &info, &len) < 0 ? -errno : 0;

		if (r == 0) {
			fd = bpf_map_get_fd_by_id(info.id);
			r = fd < 0 ? -errno : 0;
			if (fd >= 0)
				close(fd);
		}
		printf("%-28s %s (not required)\n", "map get_fd_by_id",
		       r < 0 ? strerror(-r) : "ok");
	}
	if (argc > 3) {
		int r = mount("bpffs", argv[3], "bpf", 0, "mode=0700") < 0 ? -errno : 0;

		printf("%-28s %s (not required)\n", "mount bpffs", r < 0 ? strerror(-r) : "ok");
		if (r == 0)
			umount(argv[3]);
	}
	return failures ? 1 : 0;
}
