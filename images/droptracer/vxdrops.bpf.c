// SPDX-License-Identifier: GPL-2.0
/* Counts dropped skbs (tp_btf/kfree_skb) of watched network namespaces by namespace, interface, reason,
 * kernel location, L4 protocol and bucketed port. Runs only when the kernel frees an skb as a drop:
 * consume_skb (the normal path) has its own tracepoint, so a clean path costs nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>
#include "vxdrops.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_HOPOPTS_ 0
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17
#define VXLAN_PORT_LINUX 8472
#define VXLAN_PORT_IANA 4789

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VXD_MAX_WATCHED);
	__type(key, __u32);
	__type(value, __u8);
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, VXD_MAX_KEYS);
	__type(key, struct drop_key);
	__type(value, __u64);
} drops SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, VXD_N_STATS);
	__type(key, __u32);
	__type(value, __u64);
} stats SEC(".maps");

static __always_inline void stat_inc(__u32 i)
{
	__u64 *v = bpf_map_lookup_elem(&stats, &i);
	if (v)
		(*v)++;
}

/* skb->dev shares a union with dev_scratch while the skb sits in a UDP socket queue; a real device
 * pointer lies in the kernel half of the address space, the scratch value never does. */
static __always_inline int kernel_ptr(const void *p)
{
	return (long)p < 0;
}

static __always_inline __u32 net_inum(struct net *net)
{
	if (!kernel_ptr(net))
		return 0;
	return BPF_CORE_READ(net, ns.inum);
}

static __always_inline int is_watched(__u32 inum)
{
	return inum && bpf_map_lookup_elem(&watched, &inum) != NULL;
}

/* The side of a flow that names the service: source ports are randomised (--random-fully SNAT, VXLAN's
 * flow hash), so take a privileged port, else a VXLAN port, else the destination below 32768, else the
 * source below 32768, else 0 (both ephemeral). */
static __always_inline __u16 port_bucket(__u16 sport, __u16 dport)
{
	__u16 lo = sport < dport ? sport : dport;
	if (lo && lo < 1024)
		return lo;
	if (sport == VXLAN_PORT_LINUX || dport == VXLAN_PORT_LINUX)
		return VXLAN_PORT_LINUX;
	if (sport == VXLAN_PORT_IANA || dport == VXLAN_PORT_IANA)
		return VXLAN_PORT_IANA;
	if (dport && dport < 32768)
		return dport;
	if (sport && sport < 32768)
		return sport;
	return 0;
}

struct l3info {
	__u8 l4;
	__u8 mcast;
	__u16 sport, dport;
	__u32 l4off; /* offset of the L4 header from skb->head; 0 when unknown */
};

/* Reads the IP header at off (from head) and the L4 ports after it; bounded by the linear data (tail). */
static __always_inline void parse_ip(unsigned char *head, __u32 tail, __u32 off, __u16 l3, struct l3info *out)
{
	__u8 b[40];
	__u32 l4off = 0;

	if (l3 == ETH_P_IP) {
		if (off + 20 > tail || bpf_probe_read_kernel(b, 20, head + off))
			return;
		out->l4 = b[9];
		out->mcast = (b[16] & 0xf0) == 0xe0;
		/* a non-first fragment carries no ports */
		if (((b[6] & 0x1f) | b[7]) == 0)
			l4off = off + (b[0] & 0x0f) * 4;
	} else if (l3 == ETH_P_IPV6) {
		if (off + 40 > tail || bpf_probe_read_kernel(b, 40, head + off))
			return;
		out->l4 = b[6];
		out->mcast = b[24] == 0xff;
		l4off = off + 40;
		if (out->l4 == IPPROTO_HOPOPTS_) {
			/* MLD and other multicast control hide behind one hop-by-hop header */
			__u8 h[2];
			if (l4off + 2 > tail || bpf_probe_read_kernel(h, 2, head + l4off))
				return;
			out->l4 = h[0];
			l4off += (h[1] + 1) * 8;
		}
	} else {
		return;
	}
	if (!l4off || (out->l4 != IPPROTO_TCP_ && out->l4 != IPPROTO_UDP_))
		return;
	__be16 ports[2];
	if (l4off + 4 > tail || bpf_probe_read_kernel(ports, 4, head + l4off))
		return;
	out->sport = bpf_ntohs(ports[0]);
	out->dport = bpf_ntohs(ports[1]);
	out->l4off = l4off;
}

static __always_inline void count(struct sk_buff *skb, void *location, __u32 reason, __u8 flags, struct sock *rx_sk)
{
	struct drop_key key;
	struct net_device *dev;
	struct sock *sk;
	__u32 inum = 0;

	stat_inc(VXD_STAT_SEEN);
	__builtin_memset(&key, 0, sizeof(key));

	dev = BPF_CORE_READ(skb, dev);
	if (kernel_ptr(dev)) {
		inum = net_inum(BPF_CORE_READ(dev, nd_net.net));
		if (is_watched(inum))
			bpf_core_read_str(key.ifname, sizeof(key.ifname), &dev->name);
		else
			inum = 0;
	}
	if (!inum) {
		/* the verifier wants the tracepoint's own pointer null-checked before use */
		if (rx_sk)
			sk = rx_sk;
		else
			sk = BPF_CORE_READ(skb, sk);
		if (kernel_ptr(sk))
			inum = net_inum(BPF_CORE_READ(sk, __sk_common.skc_net.net));
		if (!inum) {
			stat_inc(VXD_STAT_UNATTRIBUTED);
			return;
		}
		if (!is_watched(inum))
			return;
		flags |= VXD_VIA_SOCK;
	}

	key.netns = inum;
	key.reason = reason;
	key.location = (__u64)location;

	unsigned char *head = BPF_CORE_READ(skb, head);
	__u32 tail = BPF_CORE_READ(skb, tail);
	__u16 nh = BPF_CORE_READ(skb, network_header);
	key.l3 = bpf_ntohs(BPF_CORE_READ(skb, protocol));

	if (nh != (__u16)~0U) {
		struct l3info o = {};
		parse_ip(head, tail, nh, key.l3, &o);
		key.l4 = o.l4;
		if (o.mcast)
			flags |= VXD_MCAST;
		key.port = port_bucket(o.sport, o.dport);
		if (o.l4off && o.l4 == IPPROTO_UDP_ &&
		    (o.dport == VXLAN_PORT_LINUX || o.dport == VXLAN_PORT_IANA)) {
			/* outer UDP (8) + VXLAN header (8), then the inner Ethernet header (14) */
			__u32 eth = o.l4off + 16;
			__be16 et;
			if (eth + 14 <= tail && !bpf_probe_read_kernel(&et, 2, head + eth + 12)) {
				struct l3info in = {};
				key.inner_l3 = bpf_ntohs(et);
				parse_ip(head, tail, eth + 14, key.inner_l3, &in);
				key.inner_l4 = in.l4;
				key.inner_port = port_bucket(in.sport, in.dport);
			}
		}
	}
	key.flags = flags;

	__u64 one = 1, *v = bpf_map_lookup_elem(&drops, &key);
	if (v) {
		__sync_fetch_and_add(v, 1);
	} else if (bpf_map_update_elem(&drops, &key, &one, BPF_NOEXIST)) {
		/* another CPU inserted it first, or the map is full */
		v = bpf_map_lookup_elem(&drops, &key);
		if (v)
			__sync_fetch_and_add(v, 1);
		else
			stat_inc(VXD_STAT_OVERFLOW);
	}
}

/* The tracepoint's arguments grew: (skb, location) before 5.17, + reason, + rx_sk in 6.11. A tp_btf
 * program may only read the arguments the running kernel has, so the loader enables exactly one. */
SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_4, struct sk_buff *skb, void *location, enum skb_drop_reason reason, struct sock *rx_sk)
{
	count(skb, location, (__u32)reason, 0, rx_sk);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_3, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	count(skb, location, (__u32)reason, 0, NULL);
	return 0;
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(kfree_skb_2, struct sk_buff *skb, void *location)
{
	count(skb, location, 0, VXD_NO_REASON, NULL);
	return 0;
}
