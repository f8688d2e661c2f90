/* Shared between the BPF program and its loader: the aggregation key of one drop. */
#ifndef VXDROPS_H
#define VXDROPS_H

#define VXD_MAX_KEYS 16384
#define VXD_MAX_WATCHED 4096
#define VXD_IFNAMSIZ 16

/* flags */
#define VXD_MCAST 0x01     /* destination is IPv4 224/4 or IPv6 ff00::/8 */
#define VXD_VIA_SOCK 0x02  /* namespace came from the socket, not from skb->dev */
#define VXD_NO_REASON 0x04 /* kernel < 5.17: the tracepoint has no reason argument */

/* stats (per-CPU array indices) */
#define VXD_STAT_SEEN 0         /* every kfree_skb the program saw, any namespace */
#define VXD_STAT_UNATTRIBUTED 1 /* neither skb->dev nor a socket gave a namespace */
#define VXD_STAT_OVERFLOW 2     /* counted but the key map was full */
#define VXD_N_STATS 3

struct drop_key {
	__u64 location; /* kernel text address; the loader resolves it through /proc/kallsyms */
	__u32 netns;    /* namespace inode, as in /proc/PID/ns/net and /run/netns/NAME */
	__u32 reason;   /* enum skb_drop_reason; 0 when VXD_NO_REASON */
	char ifname[VXD_IFNAMSIZ];
	__u16 l3;       /* ethertype in host order; 0 unknown */
	__u16 port;     /* bucketed port (see README.md) */
	__u16 inner_l3; /* VXLAN: inner ethertype */
	__u16 inner_port;
	__u8 l4;        /* IP protocol number */
	__u8 inner_l4;
	__u8 flags;
	__u8 pad[5];
};

#endif
