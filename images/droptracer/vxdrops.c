// SPDX-License-Identifier: GPL-2.0
/* vxdrops: loads vxdrops.bpf.c on tp_btf/kfree_skb and prints cumulative drop counters of the watched
 * network namespaces as JSON lines. Protocol (README.md beside this file):
 *   stdout  {"ready":...} once attached, or {"unavailable":"why"} and exit 3.
 *   stdin   "watch INODE", "unwatch INODE", "snapshot", "quit" (one per line; EOF is not quit).
 *   SIGUSR1 re-read --watch-file, then write a snapshot; SIGHUP re-read --watch-file; SIGTERM/SIGINT exit.
 *   snapshot {"snapshot":SEQ,...} then one row per key, then {"end":SEQ}; to stdout, or atomically to --out.
 *   --stats adds the program's run_ns and run_cnt (kernel BPF run-time accounting) to each snapshot header.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include "vxdrops.h"
#include "vxdrops.skel.h"

#define EXIT_UNAVAILABLE 3
#define REASON_PREFIX "SKB_DROP_REASON_"

static void unavailable(const char *fmt, ...)
{
	char why[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	printf("{\"unavailable\":\"");
	for (const char *p = why; *p; p++)
		putchar(*p == '"' || *p == '\\' ? '\'' : (*p < 0x20 ? ' ' : *p));
	printf("\"}\n");
	fflush(stdout);
	exit(EXIT_UNAVAILABLE);
}

/* ---- kernel symbols: location -> function ---- */
struct ksym {
	uint64_t addr;
	char *name;
};
static struct ksym *ksyms;
static size_t nksyms;
static int ksyms_stale; /* an address fell outside every known symbol: modules may have loaded since */

static int ksym_cmp(const void *a, const void *b)
{
	const struct ksym *x = a, *y = b;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static void ksyms_load(void)
{
	FILE *f = fopen("/proc/kallsyms", "r");
	char line[512];
	size_t cap = nksyms ? nksyms + 1024 : 1 << 18;

	for (size_t i = 0; i < nksyms; i++)
		free(ksyms[i].name);
	nksyms = 0;
	ksyms_stale = 0;
	if (!f)
		return;
	ksyms = realloc(ksyms, cap * sizeof(*ksyms));
	while (fgets(line, sizeof(line), f)) {
		uint64_t addr;
		char type, name[256];
		if (sscanf(line, "%" SCNx64 " %c %255s", &addr, &type, name) != 3 || !addr)
			continue;
		if (type != 't' && type != 'T' && type != 'w' && type != 'W')
			continue;
		if (nksyms == cap)
			ksyms = realloc(ksyms, (cap *= 2) * sizeof(*ksyms));
		ksyms[nksyms].addr = addr;
		ksyms[nksyms++].name = strdup(name);
	}
	fclose(f);
	qsort(ksyms, nksyms, sizeof(*ksyms), ksym_cmp);
}

/* The function containing addr, or NULL (no root: kallsyms shows zeros). */
static const char *ksym_of(uint64_t addr)
{
	size_t lo = 0, hi = nksyms;
	if (!nksyms || addr < ksyms[0].addr)
		return NULL;
	while (hi - lo > 1) {
		size_t mid = (lo + hi) / 2;
		if (ksyms[mid].addr <= addr)
			lo = mid;
		else
			hi = mid;
	}
	/* past the last symbol of the core image with modules not yet listed */
	if (lo == nksyms - 1 && addr - ksyms[lo].addr > (1 << 20))
		return NULL;
	return ksyms[lo].name;
}

/* ---- drop reason names from the running kernel's BTF (enum skb_drop_reason) ---- */
static const char **reason_names;
static uint32_t nreasons;

static void reasons_load(const struct btf *btf)
{
	int id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	if (id < 0)
		return;
	const struct btf_type *t = btf__type_by_id(btf, id);
	const struct btf_enum *e = btf_enum(t);
	uint32_t max = 0;
	/* values with bits above 16 are subsystem reasons (SKB_DROP_REASON_SUBSYS_MASK), named elsewhere */
	for (int i = 0; i < btf_vlen(t); i++)
		if ((uint32_t)e[i].val < 0x10000 && (uint32_t)e[i].val + 1 > max)
			max = (uint32_t)e[i].val + 1;
	reason_names = calloc(max ? max : 1, sizeof(*reason_names));
	nreasons = max;
	for (int i = 0; i < btf_vlen(t); i++) {
		const char *n = btf__name_by_offset(btf, e[i].name_off);
		uint32_t v = (uint32_t)e[i].val;
		if (v >= 0x10000 || !n)
			continue;
		if (!strncmp(n, REASON_PREFIX, strlen(REASON_PREFIX)))
			n += strlen(REASON_PREFIX);
		/* the enum ends with MAX (an alias of no reason): keep the first name of a value */
		if (!reason_names[v])
			reason_names[v] = n;
	}
}

/* tp_btf may only read the arguments this kernel's tracepoint has: count them in btf_trace_kfree_skb. */
static int kfree_skb_args(const struct btf *btf)
{
	int id = btf__find_by_name_kind(btf, "btf_trace_kfree_skb", BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	const struct btf_type *t = btf__type_by_id(btf, id);
	t = btf__type_by_id(btf, t->type); /* pointer */
	if (!t || !btf_is_ptr(t))
		return -1;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -1;
	return btf_vlen(t) - 1; /* the first parameter is the tracepoint's void *__data */
}

/* ---- watched namespaces ---- */
static int watched_fd;
static const char *watch_file;
#define MAX_FILE_WATCHES VXD_MAX_WATCHED
static uint32_t file_watches[MAX_FILE_WATCHES];
static size_t nfile_watches;

static void watch(uint32_t inum, int on)
{
	uint8_t one = 1;
	if (on)
		bpf_map_update_elem(watched_fd, &inum, &one, BPF_ANY);
	else
		bpf_map_delete_elem(watched_fd, &inum);
}

/* The file holds the whole set, one "INODE [name]" per line: apply additions and removals. */
static void watch_file_sync(void)
{
	uint32_t next[MAX_FILE_WATCHES];
	size_t n = 0;
	char line[256];
	FILE *f;

	if (!watch_file || !(f = fopen(watch_file, "r")))
		return;
	while (n < MAX_FILE_WATCHES && fgets(line, sizeof(line), f)) {
		char *end;
		unsigned long v = strtoul(line, &end, 10);
		if (end != line && v && v <= UINT32_MAX)
			next[n++] = (uint32_t)v;
	}
	fclose(f);
	for (size_t i = 0; i < nfile_watches; i++) {
		int kept = 0;
		for (size_t j = 0; j < n && !kept; j++)
			kept = next[j] == file_watches[i];
		if (!kept)
			watch(file_watches[i], 0);
	}
	for (size_t j = 0; j < n; j++)
		watch(next[j], 1);
	memcpy(file_watches, next, n * sizeof(*next));
	nfile_watches = n;
}

/* ---- snapshot ---- */
static const char *out_path;
static uint64_t seq;
static int stats_fd, drops_fd;
static int have_reasons;
static int prog_fd = -1, stats_on; /* --stats: the program's own run time, from the kernel */

static void json_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = *s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *l3_name(uint16_t et, char *buf, size_t n)
{
	switch (et) {
	case 0x0800: return "ipv4";
	case 0x86DD: return "ipv6";
	case 0x0806: return "arp";
	case 0: return "";
	default: snprintf(buf, n, "0x%04x", et); return buf;
	}
}

static const char *l4_name(uint16_t l3, uint8_t p, char *buf, size_t n)
{
	if (l3 != 0x0800 && l3 != 0x86DD)
		return "";
	switch (p) {
	case 1: return "icmp";
	case 2: return "igmp";
	case 6: return "tcp";
	case 17: return "udp";
	case 58: return "icmpv6";
	case 132: return "sctp";
	default: snprintf(buf, n, "%u", p); return buf;
	}
}

static void reason_name(uint32_t r, char *buf, size_t n)
{
	if (r < nreasons && reason_names[r])
		snprintf(buf, n, "%s", reason_names[r]);
	else if (r >> 16)
		snprintf(buf, n, "SUBSYS_%u:%u", r >> 16, r & 0xffff);
	else
		snprintf(buf, n, "%u", r);
}

static uint64_t stat_sum(uint32_t i)
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t vals[ncpu > 0 ? ncpu : 1], sum = 0;
	if (ncpu <= 0 || bpf_map_lookup_elem(stats_fd, &i, vals))
		return 0;
	for (int c = 0; c < ncpu; c++)
		sum += vals[c];
	return sum;
}

struct row {
	struct drop_key k;
	uint64_t count;
};

static void snapshot(void)
{
	struct drop_key cur, next, *prev = NULL;
	struct row *rows = NULL;
	size_t nrows = 0, cap = 0;
	char tmp[4096];
	FILE *f = stdout;

	watch_file_sync();
	while (bpf_map_get_next_key(drops_fd, prev, &next) == 0) {
		uint64_t v;
		if (bpf_map_lookup_elem(drops_fd, &next, &v) == 0) {
			if (nrows == cap)
				rows = realloc(rows, (cap = cap ? cap * 2 : 256) * sizeof(*rows));
			rows[nrows].k = next;
			rows[nrows++].count = v;
			if (!ksym_of(next.location))
				ksyms_stale = 1;
		}
		cur = next;
		prev = &cur;
	}
	if (ksyms_stale)
		ksyms_load();

	if (out_path) {
		snprintf(tmp, sizeof(tmp), "%s.tmp", out_path);
		if (!(f = fopen(tmp, "w"))) {
			fprintf(stderr, "vxdrops: %s: %s\n", tmp, strerror(errno));
			free(rows);
			return;
		}
	}
	seq++;
	fprintf(f, "{\"snapshot\":%" PRIu64 ",\"keys\":%zu,\"seen\":%" PRIu64 ",\"unattributed\":%" PRIu64
		   ",\"overflow\":%" PRIu64 ",\"reasons\":%s,\"watched\":[",
		seq, nrows, stat_sum(VXD_STAT_SEEN), stat_sum(VXD_STAT_UNATTRIBUTED), stat_sum(VXD_STAT_OVERFLOW),
		have_reasons ? "true" : "false");
	uint32_t w, *wp = NULL, wcur;
	int first = 1;
	while (bpf_map_get_next_key(watched_fd, wp, &w) == 0) {
		fprintf(f, "%s%u", first ? "" : ",", w);
		first = 0;
		wcur = w;
		wp = &wcur;
	}
	fprintf(f, "]");
	struct bpf_prog_info info = {};
	uint32_t info_len = sizeof(info);
	if (stats_on && !bpf_obj_get_info_by_fd(prog_fd, &info, &info_len))
		fprintf(f, ",\"run_ns\":%llu,\"run_cnt\":%llu", (unsigned long long)info.run_time_ns,
			(unsigned long long)info.run_cnt);
	fprintf(f, "}\n");
	for (size_t i = 0; i < nrows; i++) {
		const struct drop_key *k = &rows[i].k;
		char b1[16], b2[16], b3[16], b4[16], reason[48], loc[32];
		char ifname[VXD_IFNAMSIZ + 1];
		const char *fn = ksym_of(k->location);
		memcpy(ifname, k->ifname, VXD_IFNAMSIZ);
		ifname[VXD_IFNAMSIZ] = 0;
		if (!fn) {
			snprintf(loc, sizeof(loc), "0x%" PRIx64, (uint64_t)k->location);
			fn = loc;
		}
		fprintf(f, "{\"netns\":%u,\"iface\":", k->netns);
		json_str(f, ifname);
		if (k->flags & VXD_NO_REASON) {
			fprintf(f, ",\"reason\":null");
		} else {
			reason_name(k->reason, reason, sizeof(reason));
			fprintf(f, ",\"reason\":");
			json_str(f, reason);
		}
		fprintf(f, ",\"func\":");
		json_str(f, fn);
		fprintf(f, ",\"l3\":\"%s\",\"proto\":\"%s\",\"port\":%u", l3_name(k->l3, b1, sizeof(b1)),
			l4_name(k->l3, k->l4, b2, sizeof(b2)), k->port);
		if (k->inner_l3)
			fprintf(f, ",\"inner_l3\":\"%s\",\"inner_proto\":\"%s\",\"inner_port\":%u",
				l3_name(k->inner_l3, b3, sizeof(b3)), l4_name(k->inner_l3, k->inner_l4, b4, sizeof(b4)),
				k->inner_port);
		fprintf(f, ",\"mcast\":%s,\"via\":\"%s\",\"count\":%" PRIu64 "}\n", k->flags & VXD_MCAST ? "true" : "false",
			k->flags & VXD_VIA_SOCK ? "sock" : "dev", rows[i].count);
	}
	fprintf(f, "{\"end\":%" PRIu64 "}\n", seq);
	free(rows);
	if (out_path) {
		if (fclose(f) || rename(tmp, out_path))
			fprintf(stderr, "vxdrops: %s: %s\n", out_path, strerror(errno));
	} else {
		fflush(stdout);
	}
}

/* stdin commands; returns 0 on "quit". */
static int command(char *line)
{
	unsigned long v;
	line[strcspn(line, "\r\n")] = 0;
	if (sscanf(line, "watch %lu", &v) == 1 && v && v <= UINT32_MAX)
		watch((uint32_t)v, 1);
	else if (sscanf(line, "unwatch %lu", &v) == 1 && v <= UINT32_MAX)
		watch((uint32_t)v, 0);
	else if (!strcmp(line, "snapshot") || !*line)
		snapshot();
	else if (!strcmp(line, "quit"))
		return 0;
	else
		fprintf(stderr, "vxdrops: unknown command: %s\n", line);
	return 1;
}

static int libbpf_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: vxdrops [--watch-file FILE] [--out FILE] [--exit-with PID] [--stats] [--tracepoint-args 2|3] [--watch INODE]...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "watch-file", required_argument, 0, 'f' },
		{ "out", required_argument, 0, 'o' },
		{ "exit-with", required_argument, 0, 'p' },
		{ "watch", required_argument, 0, 'w' },
		{ "stats", no_argument, 0, 's' },
		{ "tracepoint-args", required_argument, 0, 'a' },
		{ 0 },
	};
	uint32_t initial[64];
	int ninitial = 0, c, pidfd = -1;
	long parent = 0;
	int force_args = 0; /* tests: use an older kernel's tracepoint signature (fewer arguments is always valid) */

	while ((c = getopt_long(argc, argv, "f:o:p:w:sa:", opts, NULL)) != -1) {
		switch (c) {
		case 'f': watch_file = optarg; break;
		case 'o': out_path = optarg; break;
		case 'p': parent = strtol(optarg, NULL, 10); break;
		case 'w':
			if (ninitial < 64)
				initial[ninitial++] = (uint32_t)strtoul(optarg, NULL, 10);
			break;
		case 's': stats_on = 1; break;
		case 'a': force_args = atoi(optarg); break;
		default: usage();
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	libbpf_set_print(libbpf_print);

	if (parent > 0) {
		/* the harness that started us: when it dies without stopping us, we go too */
		pidfd = syscall(SYS_pidfd_open, (pid_t)parent, 0);
		if (pidfd < 0)
			unavailable("--exit-with %ld: %s", parent, strerror(errno));
	}

	struct btf *vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		unavailable("no kernel BTF (/sys/kernel/btf/vmlinux): %s", strerror(errno));
	int nargs = kfree_skb_args(vmlinux);
	if (nargs < 2)
		unavailable("this kernel's BTF has no kfree_skb tracepoint (btf_trace_kfree_skb)");
	if (force_args >= 2 && force_args < nargs)
		nargs = force_args;
	reasons_load(vmlinux);
	have_reasons = nargs >= 3 && nreasons > 0;

	struct rlimit unlimited = { RLIM_INFINITY, RLIM_INFINITY };
	setrlimit(RLIMIT_MEMLOCK, &unlimited); /* kernels before 5.11 charge BPF maps to memlock */

	struct vxdrops_bpf *skel = vxdrops_bpf__open();
	if (!skel)
		unavailable("opening the BPF object: %s", strerror(errno));
	bpf_program__set_autoload(skel->progs.kfree_skb_4, nargs >= 4);
	bpf_program__set_autoload(skel->progs.kfree_skb_3, nargs == 3);
	bpf_program__set_autoload(skel->progs.kfree_skb_2, nargs == 2);
	int err = vxdrops_bpf__load(skel);
	if (err)
		unavailable("loading the BPF program: %s%s", strerror(-err),
			    geteuid() ? " (not root: needs CAP_BPF and CAP_PERFMON)" : "");
	err = vxdrops_bpf__attach(skel);
	if (err)
		unavailable("attaching to tp_btf/kfree_skb: %s", strerror(-err));

	prog_fd = bpf_program__fd(nargs >= 4 ? skel->progs.kfree_skb_4 : nargs == 3 ? skel->progs.kfree_skb_3 : skel->progs.kfree_skb_2);
	/* run-time accounting costs every BPF program on the machine a little: only when asked (the bench) */
	if (stats_on && bpf_enable_stats(BPF_STATS_RUN_TIME) < 0)
		stats_on = 0;
	watched_fd = bpf_map__fd(skel->maps.watched);
	drops_fd = bpf_map__fd(skel->maps.drops);
	stats_fd = bpf_map__fd(skel->maps.stats);
	for (int i = 0; i < ninitial; i++)
		watch(initial[i], 1);
	watch_file_sync();
	ksyms_load();

	sigset_t mask;
	sigemptyset(&mask);
	sigaddset(&mask, SIGUSR1);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGPIPE);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	int sfd = signalfd(-1, &mask, SFD_CLOEXEC);

	struct utsname u;
	uname(&u);
	printf("{\"ready\":true,\"pid\":%d,\"kernel\":", getpid());
	json_str(stdout, u.release);
	printf(",\"args\":%d,\"reasons\":%s,\"kallsyms\":%s}\n", nargs, have_reasons ? "true" : "false",
	       nksyms ? "true" : "false");
	fflush(stdout);

	struct pollfd pfd[3] = { { sfd, POLLIN, 0 }, { STDIN_FILENO, POLLIN, 0 }, { pidfd, POLLIN, 0 } };
	char line[256];
	size_t have = 0;
	for (;;) {
		if (poll(pfd, 3, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[2].revents)
			break;
		if (pfd[0].revents & POLLIN) {
			struct signalfd_siginfo si;
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				continue;
			if (si.ssi_signo == SIGUSR1)
				snapshot();
			else if (si.ssi_signo == SIGHUP)
				watch_file_sync();
			else if (si.ssi_signo != SIGPIPE)
				break;
		}
		if (pfd[1].revents) {
			ssize_t n = read(STDIN_FILENO, line + have, sizeof(line) - 1 - have);
			if (n <= 0) {
				pfd[1].fd = -1; /* EOF or /dev/null: keep running on signals */
				continue;
			}
			have += n;
			line[have] = 0;
			char *nl;
			int go = 1;
			while (go && (nl = strchr(line, '\n'))) {
				*nl = 0;
				go = command(line);
				memmove(line, nl + 1, have - (nl + 1 - line) + 1);
				have -= nl + 1 - line;
			}
			if (!go)
				break;
			if (have == sizeof(line) - 1)
				have = 0; /* an over-long line: drop it */
		}
	}
	vxdrops_bpf__destroy(skel);
	btf__free(vmlinux);
	return 0;
}
