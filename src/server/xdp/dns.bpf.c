// SPDX-License-Identifier: Apache-2.0
//
// Switchyard's XDP program: steers UDP datagrams addressed to one of the
// `[dns.xdp] listen` addresses to the AF_XDP socket of the receive queue they
// arrived on, and passes every other frame to the kernel untouched: ARP,
// ICMP, TCP, other ports and addresses, IP fragments, IPv4 with options,
// IPv6 with extension headers and VLAN-tagged frames (the kernel's own
// stack, and Switchyard's sockets, answer what this program does not take).
//
// Built by build.rs with `clang -target bpf`; self-contained (no libbpf or
// kernel headers), so any clang that has the BPF target builds it.

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;

#define SEC(name) __attribute__((section(name), used))
#define __uint(name, val) int (*name)[val]
#define __type(name, val) __typeof__(val) *name

enum {
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_PERCPU_ARRAY = 6,
    BPF_MAP_TYPE_XSKMAP = 17,
};
enum { XDP_ABORTED = 0, XDP_DROP, XDP_PASS, XDP_TX, XDP_REDIRECT };

struct xdp_md {
    __u32 data;
    __u32 data_end;
    __u32 data_meta;
    __u32 ingress_ifindex;
    __u32 rx_queue_index;
    __u32 egress_ifindex;
};

static void *(*bpf_map_lookup_elem)(void *map, const void *key) = (void *)1;
static long (*bpf_redirect_map)(void *map, __u64 key, __u64 flags) = (void *)51;

// A listen address: IPv4 in addr[0] (network order, the rest zero), port in
// network order; an all-zero address is the wildcard (0.0.0.0 or ::).
struct listen_key {
    __u32 addr[4];
    __u16 port;
    __u16 family; // 4 or 6
};

// Receive queue index -> AF_XDP socket (set by the server per queue).
struct {
    __uint(type, BPF_MAP_TYPE_XSKMAP);
    __uint(max_entries, 1024);
    __type(key, __u32);
    __type(value, __u32);
} sy_xsks SEC(".maps");

// The addresses answered here.
struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, struct listen_key);
    __type(value, __u8);
} sy_listen SEC(".maps");

// Per-CPU counts of frames passed to the kernel ([0]; [1] unused:
// redirected frames are counted by the workers that take them).
struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u64);
} sy_stats SEC(".maps");

#define ETH_P_IP 0x0008   /* 0x0800, network order on little-endian */
#define ETH_P_IPV6 0xDD86 /* 0x86DD */
#define IPPROTO_UDP 17

static __attribute__((always_inline)) int count(__u32 slot, int action)
{
    __u64 *n = bpf_map_lookup_elem(&sy_stats, &slot);
    if (n)
        *n += 1;
    return action;
}

SEC("xdp")
int switchyard_xdp(struct xdp_md *ctx)
{
    __u8 *data = (__u8 *)(long)ctx->data;
    __u8 *end = (__u8 *)(long)ctx->data_end;
    struct listen_key key = {};
    __u8 *l4;

    if (data + 14 > end)
        return count(0, XDP_PASS);
    __u16 proto = *(__u16 *)(data + 12);
    __u8 *ip = data + 14;
    if (proto == ETH_P_IP) {
        if (ip + 20 > end)
            return count(0, XDP_PASS);
        // Version 4 without options, UDP, not a fragment (MF or offset).
        if (ip[0] != 0x45 || ip[9] != IPPROTO_UDP || (ip[6] & 0x3f) || ip[7])
            return count(0, XDP_PASS);
        __builtin_memcpy(&key.addr[0], ip + 16, 4);
        key.family = 4;
        l4 = ip + 20;
    } else if (proto == ETH_P_IPV6) {
        if (ip + 40 > end)
            return count(0, XDP_PASS);
        // Version 6 with UDP as the next header (extension headers pass).
        if ((ip[0] >> 4) != 6 || ip[6] != IPPROTO_UDP)
            return count(0, XDP_PASS);
        __builtin_memcpy(key.addr, ip + 24, 16);
        key.family = 6;
        l4 = ip + 40;
    } else {
        return count(0, XDP_PASS);
    }
    if (l4 + 8 > end)
        return count(0, XDP_PASS);
    __builtin_memcpy(&key.port, l4 + 2, 2);
    if (!bpf_map_lookup_elem(&sy_listen, &key)) {
        key.addr[0] = key.addr[1] = key.addr[2] = key.addr[3] = 0;
        if (!bpf_map_lookup_elem(&sy_listen, &key))
            return count(0, XDP_PASS);
    }
    // A queue without a socket of ours passes (the flags' low bits are the
    // action when the map has no entry).
    return bpf_redirect_map(&sy_xsks, ctx->rx_queue_index, XDP_PASS);
}

char _license[] SEC("license") = "Apache-2.0";
