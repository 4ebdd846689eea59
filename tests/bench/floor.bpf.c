/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The floor of the benchmark: a cgroup connect4 program that lets everything through. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual BSD/GPL";

SEC("cgroup/connect4")
int mas_bench_floor(struct bpf_sock_addr *ctx)
{
	return 1;
}
