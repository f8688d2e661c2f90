/*
 * vxprobe: what an application feels. Runs getaddrinfo() (or TCP connect()) in N threads for a bounded
 * time or count through the libc it was linked against (musl static = Alpine, glibc = Debian) and prints
 * one line per operation for the harness (harness/measure/probe.ts):
 *
 *   # vxprobe 2 libc=<musl|glibc> mode=<resolve|connect> threads=<n> fresh=<0|1>
 *   L <thread> <start_us> <latency_us> <result> <detail>
 *   # done samples=<n> wall_us=<us>
 *
 * Each L line is written with one write(2) the moment its operation ends (lines of different threads
 * interleave, never within a line), so whoever stops the probe early still has everything it measured.
 * SIGTERM, SIGINT or SIGHUP end the run at once (operations in flight are dropped) with the trailer
 *
 *   # stopped signal=<SIGTERM|SIGINT|SIGHUP> samples=<n> wall_us=<us>
 *
 * and exit status 128+signal. A SIGKILL leaves the L lines written so far and no trailer.
 *
 * With -L it is instead the endpoint of connect workloads: a TCP server that accepts and closes; with -B
 * a nameserver that never answers.
 *
 * <result> is OK or a symbolic error (EAI_AGAIN, EAI_NONAME, ETIMEDOUT, ...): numbers differ between
 * libcs, names do not. <start_us> is relative to the probe's start.
 *
 * Exit status: 0 done, 2 bad arguments (with a message on stderr), 3 a system call failed.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <resolv.h>
#include <signal.h>
#include <stdarg.h>
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
#define MAX_THREADS 1024
#define MAX_COUNT 1000000000L
/* A day: longer runs are a typo, and the harness bounds every call far below. */
#define MAX_DURATION_S 86400.0
/* Pause after a failed accept/recv (EMFILE, ENOBUFS, ...) so a persistent error cannot spin a core. */
#define ERROR_BACKOFF_NS 10000000L

struct sample {
  int64_t start_us;
  int64_t latency_us;
  const char *result;
  int detail; /* addresses returned (resolve) or 0 */
};

static const char *names[MAX_NAMES];
static struct in_addr addrs[MAX_NAMES]; /* connect mode: names[] parsed once, up front */
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

/* Guards stdout and `printed`: a line and its count go out together, and nothing follows a trailer. */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static long printed;
static int finished;

static int64_t now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void backoff(void) {
  struct timespec ts = {0, ERROR_BACKOFF_NS};
  nanosleep(&ts, NULL);
}

/* Bad input from the caller: say what and exit 2 (the harness maps 2 to a usage error). */
static void bad_arg(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("vxprobe: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputs(" (vxprobe -h for usage)\n", stderr);
  va_end(ap);
  exit(2);
}

/* A system call failed where the probe cannot go on: exit 3. */
static void die(const char *what, int err) {
  fprintf(stderr, "vxprobe: %s: %s\n", what, strerror(err));
  exit(3);
}

static long parse_long(char opt, const char *s, long min, long max) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (end == s || *end != '\0' || errno == ERANGE || v < min || v > max)
    bad_arg("-%c: expected an integer from %ld to %ld, got \"%s\"", opt, min, max, s);
  return v;
}

static double parse_seconds(char opt, const char *s) {
  char *end;
  errno = 0;
  double v = strtod(s, &end);
  if (end == s || *end != '\0' || errno == ERANGE || !isfinite(v) || v <= 0 || v > MAX_DURATION_S)
    bad_arg("-%c: expected seconds greater than 0 and at most %.0f, got \"%s\"", opt, MAX_DURATION_S, s);
  return v;
}

/* Whole buffer or nothing: a reader that went away ends the probe (there is no one left to tell). */
static void write_all(const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(STDOUT_FILENO, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      _exit(3);
    }
    buf += n;
    len -= (size_t)n;
  }
}

/* One line, one write(2), under out_lock: pipe writes up to PIPE_BUF are atomic, lines are far shorter. */
static void emit_locked(const char *fmt, ...) {
  char line[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n >= sizeof line) n = sizeof line - 1;
  write_all(line, (size_t)n);
}

static void emit_sample(int thread, struct sample s) {
  pthread_mutex_lock(&out_lock);
  if (!finished) {
    emit_locked("L %d %lld %lld %s %d\n", thread, (long long)s.start_us, (long long)s.latency_us, s.result, s.detail);
    printed++;
  }
  pthread_mutex_unlock(&out_lock);
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
  if (rc == 0)
    for (struct addrinfo *a = res; a; a = a->ai_next) n++;
  if (rc == 0 && res) freeaddrinfo(res);
  struct sample s = {start - t0_us, end - start, gai_name(rc), n};
  return s;
}

static struct sample connect_once(struct in_addr addr) {
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)port);
  sa.sin_addr = addr;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  /* Out of descriptors or memory is the probe's failure, not the network's: not a sample. */
  if (fd < 0) die("socket", errno);
  int64_t start = now_us();
  int err = 0;
  if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
    if (errno != EINPROGRESS) {
      err = errno;
    } else {
      struct pollfd p = {fd, POLLOUT, 0};
      int r;
      do r = poll(&p, 1, connect_timeout_ms);
      while (r < 0 && errno == EINTR);
      if (r < 0) {
        err = errno;
      } else if (r == 0) {
        err = ETIMEDOUT;
      } else {
        socklen_t l = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0) err = errno;
      }
    }
  }
  int64_t end = now_us();
  /* RST instead of FIN/TIME_WAIT: thousands of connections must not exhaust the node's ports. */
  struct linger lg = {1, 0};
  (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  close(fd);
  struct sample s = {start - t0_us, end - start, errno_name(err), 0};
  return s;
}

static void *run(void *arg) {
  int index = (int)(intptr_t)arg;
  long i = index;
  while (more()) {
    long k = i++ % n_names;
    emit_sample(index, connect_mode ? connect_once(addrs[k]) : resolve_once(names[k]));
  }
  return NULL;
}

/* The only thread that takes SIGTERM/SIGINT/SIGHUP: ends the run with a trailer, never mid-line. */
static void *on_signal(void *arg) {
  sigset_t *set = arg;
  int sig;
  for (;;) {
    if (sigwait(set, &sig) != 0) continue;
    pthread_mutex_lock(&out_lock);
    if (finished) {
      pthread_mutex_unlock(&out_lock);
      return NULL;
    }
    finished = 1;
    const char *name = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGHUP";
    emit_locked("# stopped signal=%s samples=%ld wall_us=%lld\n", name, printed, (long long)(now_us() - t0_us));
    _exit(128 + sig);
  }
}

static int listen_socket(int type, int listen_port) {
  int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket", errno);
  int one = 1;
  if (type == SOCK_STREAM && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) die("setsockopt SO_REUSEADDR", errno);
  struct sockaddr_in sa;
  memset(&sa, 0, sizeof sa);
  sa.sin_family = AF_INET;
  sa.sin_port = htons((uint16_t)listen_port);
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind", errno);
  if (type == SOCK_STREAM && listen(fd, 4096) < 0) die("listen", errno);
  return fd;
}

/* -L: the endpoint side of connect workloads: accept and close, forever (the harness stops it by PID). */
_Noreturn static void serve(int listen_port) {
  int fd = listen_socket(SOCK_STREAM, listen_port);
  printf("# listening port=%d\n", listen_port);
  fflush(stdout);
  for (;;) {
    int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (c >= 0) close(c);
    else if (errno != EINTR && errno != ECONNABORTED) backoff();
  }
}

/* -B: a nameserver that never answers: reads UDP queries and drops them (dead-upstream on kind). */
_Noreturn static void blackhole(int port_udp) {
  int fd = listen_socket(SOCK_DGRAM, port_udp);
  printf("# blackhole udp port=%d\n", port_udp);
  fflush(stdout);
  char buf[4096];
  for (;;)
    if (recv(fd, buf, sizeof buf, 0) < 0 && errno != EINTR) backoff();
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: vxprobe [-t threads] [-d seconds | -c count] [-f] [-4|-6] NAME...\n"
          "       vxprobe -C -p port [-T timeout_ms] [-t threads] [-d seconds | -c count] IPV4...\n"
          "  -t N   concurrent threads, 1 to %d (default 1)\n"
          "  -d S   run for S seconds (in-flight operations are allowed to finish)\n"
          "  -c N   run N operations in total (takes precedence over -d)\n"
          "  -f     fresh resolver per lookup (res_init before each getaddrinfo)\n"
          "  -4/-6  ask for A or AAAA only (default: both, in parallel, as applications do)\n"
          "  -C     TCP connect mode: time a new connection to IPV4:port\n"
          "  -L P   serve: accept and close TCP connections on port P (endpoint pods)\n"
          "  -B P   blackhole: read UDP datagrams on port P and never answer (a dead nameserver)\n"
          "  at most %d NAMEs or IPV4s, used round-robin; SIGTERM/SIGINT stop early with a trailer\n",
          MAX_THREADS, MAX_NAMES);
}

int main(int argc, char **argv) {
  int opt;
  long listen_port = 0, blackhole_port = 0;
  while ((opt = getopt(argc, argv, "t:d:c:f46Cp:T:L:B:h")) != -1) {
    switch (opt) {
    case 't': threads = (int)parse_long('t', optarg, 1, MAX_THREADS); break;
    case 'd': duration_s = parse_seconds('d', optarg); break;
    case 'c': count = parse_long('c', optarg, 1, MAX_COUNT); break;
    case 'f': fresh = 1; break;
    case '4': family = AF_INET; break;
    case '6': family = AF_INET6; break;
    case 'C': connect_mode = 1; break;
    case 'p': port = (int)parse_long('p', optarg, 1, 65535); break;
    case 'T': connect_timeout_ms = (int)parse_long('T', optarg, 1, 3600 * 1000); break;
    case 'L': listen_port = parse_long('L', optarg, 1, 65535); break;
    case 'B': blackhole_port = parse_long('B', optarg, 1, 65535); break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (listen_port > 0) serve((int)listen_port);
  if (blackhole_port > 0) blackhole((int)blackhole_port);
  if (argc - optind > MAX_NAMES) bad_arg("too many targets (%d), at most %d", argc - optind, MAX_NAMES);
  for (; optind < argc; optind++) {
    const char *name = argv[optind];
    if (*name == '\0') bad_arg("empty target name");
    if (connect_mode && inet_pton(AF_INET, name, &addrs[n_names]) != 1) bad_arg("-C: \"%s\" is not an IPv4 address", name);
    names[n_names++] = name;
  }
  if (n_names == 0) bad_arg("no NAME (or IPV4 with -C) to probe");
  if (duration_s <= 0 && count <= 0) bad_arg("give a bound: -d seconds or -c count");

  /* Block the stop signals before any thread exists so that every thread inherits the mask. */
  static sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGHUP);
  int rc = pthread_sigmask(SIG_BLOCK, &stop, NULL);
  if (rc != 0) die("pthread_sigmask", rc);
  pthread_t sig_thread;
  rc = pthread_create(&sig_thread, NULL, on_signal, &stop);
  if (rc != 0) die("pthread_create (signal thread)", rc);

  pthread_t *tids = calloc((size_t)threads, sizeof *tids);
  if (!tids) die("calloc", errno ? errno : ENOMEM);
  t0_us = now_us();
  deadline_us = t0_us + (int64_t)(duration_s * 1e6);
  pthread_mutex_lock(&out_lock);
  emit_locked("# vxprobe 2 libc=%s mode=%s threads=%d fresh=%d\n", LIBC, connect_mode ? "connect" : "resolve", threads, fresh);
  pthread_mutex_unlock(&out_lock);
  for (int i = 0; i < threads; i++) {
    rc = pthread_create(&tids[i], NULL, run, (void *)(intptr_t)i);
    if (rc != 0) die("pthread_create", rc);
  }
  for (int i = 0; i < threads; i++) {
    rc = pthread_join(tids[i], NULL);
    if (rc != 0) die("pthread_join", rc);
  }
  pthread_mutex_lock(&out_lock);
  finished = 1;
  emit_locked("# done samples=%ld wall_us=%lld\n", printed, (long long)(now_us() - t0_us));
  pthread_mutex_unlock(&out_lock);
  free(tids);
  return 0;
}
