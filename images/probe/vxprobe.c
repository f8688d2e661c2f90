/*
 * vxprobe: what an application feels. Runs getaddrinfo() (or TCP connect()) in N threads for a bounded
 * time or count through the libc it was linked against (musl static = Alpine, glibc = Debian) and prints
 * one line per operation for the harness:
 *
 *   # vxprobe 1 libc=<musl|glibc> mode=<resolve|connect> threads=<n> fresh=<0|1>
 *   L <thread> <start_us> <latency_us> <result> <detail>
 *   # done samples=<n> wall_us=<us>
 *
 * With -L it is instead the endpoint of connect workloads: a TCP server that accepts and closes; with -B
 * a nameserver that never answers.
 *
 * <result> is OK or a symbolic error (EAI_AGAIN, EAI_NONAME, ETIMEDOUT, ...): numbers differ between
 * libcs, names do not. <start_us> is relative to the probe's start.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#if defined(__GLIBC__)
#define LIBC "glibc"
#else
#define LIBC "musl"
#endif

#define MAX_NAMES 16

struct sample {
  int64_t start_us;
  int64_t latency_us;
  const char *result;
  int detail; /* addresses returned (resolve) or 0 */
};

struct worker {
  pthread_t tid;
  int index;
  struct sample *samples;
  size_t len, cap;
};

static const char *names[MAX_NAMES];
static int n_names;
static int threads = 1;
static double duration_s = 0;
static long count = 0;
static int fresh = 0;
static int family = AF_UNSPEC;
static int connect_mode = 0;
static int port = 80;
static int connect_timeout_ms = 10000;
static int64_t t0_us, deadline_us;
static atomic_long issued;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static const char *gai_name(int rc) {
  switch (rc) {
  case 0: return "OK";
  case EAI_AGAIN: return "EAI_AGAIN";
  case EAI_NONAME: return "EAI_NONAME";
  case EAI_FAIL: return "EAI_FAIL";
  case EAI_FAMILY: return "EAI_FAMILY";
  case EAI_MEMORY: return "EAI_MEMORY";
  case EAI_SERVICE: return "EAI_SERVICE";
  case EAI_SOCKTYPE: return "EAI_SOCKTYPE";
  case EAI_BADFLAGS: return "EAI_BADFLAGS";
  case EAI_SYSTEM: return "EAI_SYSTEM";
#ifdef EAI_NODATA
  case EAI_NODATA: return "EAI_NODATA";
#endif
#ifdef EAI_ADDRFAMILY
  case EAI_ADDRFAMILY: return "EAI_ADDRFAMILY";
#endif
  default: return "EAI_OTHER";
  }
}

static const char *errno_name(int e) {
  switch (e) {
  case 0: return "OK";
  case ETIMEDOUT: return "ETIMEDOUT";
  case ECONNREFUSED: return "ECONNREFUSED";
  case EHOSTUNREACH: return "EHOSTUNREACH";
  case ENETUNREACH: return "ENETUNREACH";
  case ECONNRESET: return "ECONNRESET";
  case EADDRNOTAVAIL: return "EADDRNOTAVAIL";
  default: return "ECONNECT_OTHER";
  }
}

static void push(struct worker *w, struct sample s) {
  if (w->len == w->cap) {
    w->cap = w->cap ? w->cap * 2 : 4096;
    w->samples = realloc(w->samples, w->cap * sizeof *w->samples);
    if (!w->samples) { perror("realloc"); exit(3); }
  }
  w->samples[w->len++] = s;
}

static int more(void) {
  if (count > 0) return atomic_fetch_add(&issued, 1) < count;
  return now_us() < deadline_us;
}

static struct sample resolve_once(const char *name) {
  struct addrinfo hints, *res = NULL;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = family;
  hints.ai_socktype = SOCK_STREAM;
  /* A short-lived client starts with a fresh resolver state: glibc otherwise keeps the per-thread switch
   * to single-request it makes after a timeout. musl keeps no state; res_init() is a no-op there. */
  if (fresh) res_init();
  int64_t start = now_us();
  int rc = getaddrinfo(name, NULL, &hints, &res);
  int64_t end = now_us();
  int n = 0;
  for (struct addrinfo *a = res; a; a = a->ai_next) n++;
  if (res) freeaddrinfo(res);
  struct sample s = {start - t0_us, end - start, gai_name(rc), n};
  return s;
}

static struct sample connect_once(const char *host) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  inet_pton(AF_INET, host, &sa.sin_addr);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int64_t start = now_us();
  int err = 0;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (errno != EINPROGRESS) {
      err = errno;
    } else {
      struct pollfd p = {fd, POLLOUT, 0};
      int r = poll(&p, 1, connect_timeout_ms);
      if (r == 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t l = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l);
      }
    }
  }
  int64_t end = now_us();
  /* RST instead of FIN/TIME_WAIT: thousands of connections must not exhaust the node's ports. */
  struct linger lg = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  struct sample s = {start - t0_us, end - start, errno_name(err), 0};
  return s;
}

static void *run(void *arg) {
  struct worker *w = arg;
  long i = w->index;
  while (more()) {
    const char *target = names[i++ % n_names];
    push(w, connect_mode ? connect_once(target) : resolve_once(target));
  }
  return NULL;
}

/* -L: the endpoint side of connect workloads: accept and close, forever (the harness stops it by PID). */
static int serve(int listen_port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)listen_port);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 4096) < 0) {
    perror("vxprobe -L");
    return 3;
  }
  printf("# listening port=%d\n", listen_port);
  fflush(stdout);
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c >= 0) close(c);
  }
}

/* -B: a nameserver that never answers: reads UDP queries and drops them (dead-upstream on kind). */
static int blackhole(int port_udp) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port_udp);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    perror("vxprobe -B");
    return 3;
  }
  printf("# blackhole udp port=%d\n", port_udp);
  fflush(stdout);
  char buf[4096];
  for (;;) recv(fd, buf, sizeof buf, 0);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: vxprobe [-t threads] [-d seconds | -c count] [-f] [-4|-6] NAME...\n"
          "       vxprobe -C -p port [-T timeout_ms] [-t threads] [-d seconds | -c count] IPV4...\n"
          "  -t N   concurrent threads (default 1)\n"
          "  -d S   run for S seconds (in-flight operations are allowed to finish)\n"
          "  -c N   run N operations in total\n"
          "  -f     fresh resolver per lookup (res_init before each getaddrinfo)\n"
          "  -4/-6  ask for A or AAAA only (default: both, in parallel, as applications do)\n"
          "  -C     TCP connect mode: time a new connection to IPV4:port\n"
          "  -L P   serve: accept and close TCP connections on port P (endpoint pods)\n"
          "  -B P   blackhole: read UDP datagrams on port P and never answer (a dead nameserver)\n");
}

int main(int argc, char **argv) {
  int opt;
  int listen_port = 0, blackhole_port = 0;
  while ((opt = getopt(argc, argv, "t:d:c:f46Cp:T:L:B:h")) != -1) {
    switch (opt) {
    case 't': threads = atoi(optarg); break;
    case 'd': duration_s = atof(optarg); break;
    case 'c': count = atol(optarg); break;
    case 'f': fresh = 1; break;
    case '4': family = AF_INET; break;
    case '6': family = AF_INET6; break;
    case 'C': connect_mode = 1; break;
    case 'p': port = atoi(optarg); break;
    case 'T': connect_timeout_ms = atoi(optarg); break;
    case 'L': listen_port = atoi(optarg); break;
    case 'B': blackhole_port = atoi(optarg); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (listen_port > 0) return serve(listen_port);
  if (blackhole_port > 0) return blackhole(blackhole_port);
  for (; optind < argc && n_names < MAX_NAMES; optind++) names[n_names++] = argv[optind];
  if (n_names == 0 || threads < 1 || threads > 1024 || (duration_s <= 0 && count <= 0)) {
    usage(stderr);
    return 2;
  }
  struct worker *ws = calloc((size_t)threads, sizeof *ws);
  t0_us = now_us();
  deadline_us = t0_us + (int64_t)(duration_s * 1e6);
  for (int i = 0; i < threads; i++) {
    ws[i].index = i;
    if (pthread_create(&ws[i].tid, NULL, run, &ws[i]) != 0) { perror("pthread_create"); return 3; }
  }
  size_t total = 0;
  for (int i = 0; i < threads; i++) {
    pthread_join(ws[i].tid, NULL);
    total += ws[i].len;
  }
  int64_t wall = now_us() - t0_us;
  static char buf[1 << 20];
  setvbuf(stdout, buf, _IOFBF, sizeof buf);
  printf("# vxprobe 1 libc=%s mode=%s threads=%d fresh=%d\n", LIBC, connect_mode ? "connect" : "resolve",
         threads, fresh);
  for (int i = 0; i < threads; i++)
    for (size_t j = 0; j < ws[i].len; j++) {
      struct sample *s = &ws[i].samples[j];
      printf("L %d %lld %lld %s %d\n", i, (long long)s->start_us, (long long)s->latency_us, s->result, s->detail);
    }
  printf("# done samples=%zu wall_us=%lld\n", total, (long long)wall);
  return 0;
}
