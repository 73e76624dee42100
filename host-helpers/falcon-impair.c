/*
 * falcon-impair: netem's delay, jitter, loss, duplication, corruption, reordering and rate for
 * one Falcon link, in user space, for hosts whose kernel has no netem qdisc.
 *
 * The helper owns one tap per direction of the link. Falcon's tc wiring sends every frame that
 * endpoint A transmits to the egress of tap AB (instead of straight to B's tap); the helper reads
 * it from AB, impairs it, and writes it back into AB, where an ingress filter redirects it to B's
 * tap. Likewise BA for the other direction. The taps are not persistent: they vanish when the
 * helper exits, so a stopped helper leaves nothing behind.
 *
 * Usage:
 *   falcon-impair --tap-ab NAME --tap-ba NAME --config FILE --stats FILE --pid-file FILE
 *
 * The config file holds one line per direction, `ab` or `ba`, then key=value pairs:
 *   ab delay_ms=100 jitter_ms=5 loss_pct=1 duplicate_pct=0 corrupt_pct=0 reorder_pct=0 rate_mbit=10 limit=1000
 * Absent keys are 0 (limit: 1000 frames, netem's default). SIGHUP re-reads it; frames already
 * queued keep their departure times. SIGTERM or SIGINT: exit (queued frames are dropped).
 * The stats file (JSON, rewritten atomically at most twice a second) counts per direction.
 * The pid file is written once the taps are up: its appearance means "ready".
 *
 * Semantics follow netem: loss drops a frame; duplicate sends it twice; corrupt flips one random
 * bit; delay +/- uniform jitter (jitter may reorder, as in netem); reorder sends that share of
 * frames at once, ahead of the delayed ones; rate serializes frames at that bit rate before the
 * delay (a link's bandwidth, then its propagation delay); a direction holding `limit` frames
 * drops new ones.
 *
 * Build: gcc -static -O2 -std=c11 -Wall -Wextra -o falcon-impair falcon-impair.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/virtio_net.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* A virtio-net header, then a frame or a segment of up to 64 KiB plus its Ethernet header. */
#define VNET_HDR ((uint32_t)sizeof(struct virtio_net_hdr))
#define MAX_FRAME (65536 + 256)
#define OFFLOADS (TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6 | TUN_F_TSO_ECN)
#define DEFAULT_LIMIT 1000u
#define STATS_INTERVAL_NS 500000000ull

struct conf {
  double delay_ns, jitter_ns, loss, duplicate, corrupt, reorder, rate_bps;
  unsigned limit;
};

struct pkt {
  uint64_t due, seq;
  uint32_t len;
  unsigned char data[];
};

struct dir {
  const char *key, *tap;
  int fd;
  struct conf c;
  int offloads; /* whether the tap currently takes TUN_F_CSUM/TSO */
  struct pkt **heap;
  size_t n, cap;
  uint64_t tx_end; /* when the rate limiter's wire is free again */
  uint64_t rx, tx, lost, queue_drops, duplicated, corrupted, reordered, write_errors;
};

static uint64_t rng_state;
static uint64_t seq_counter;
static int stats_dirty = 1;

static void die(const char *what) {
  fprintf(stderr, "falcon-impair: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: fast, and good enough to decide which frames to drop. */
static uint64_t rnd64(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 2685821657736338717ull;
}
/* Uniform in [0, 1). */
static double rnd(void) { return (double)(rnd64() >> 11) / 9007199254740992.0; }

static int earlier(const struct pkt *a, const struct pkt *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_push(struct dir *d, struct pkt *p) {
  if (d->n == d->cap) {
    d->cap = d->cap ? d->cap * 2 : 64;
    d->heap = realloc(d->heap, d->cap * sizeof *d->heap);
    if (!d->heap) die("realloc");
  }
  size_t i = d->n++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!earlier(p, d->heap[parent])) break;
    d->heap[i] = d->heap[parent];
    i = parent;
  }
  d->heap[i] = p;
}

static struct pkt *heap_pop(struct dir *d) {
  struct pkt *top = d->heap[0], *last = d->heap[--d->n];
  size_t i = 0;
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct pkt *best = last;
    if (l < d->n && earlier(d->heap[l], best)) { m = l; best = d->heap[l]; }
    if (r < d->n && earlier(d->heap[r], best)) m = r;
    if (m == i) break;
    d->heap[i] = d->heap[m];
    i = m;
  }
  if (d->n) d->heap[i] = last;
  return top;
}

static double pct(const char *v) { return strtod(v, NULL) / 100.0; }

static void parse_line(char *line, struct dir *dirs) {
  char *save = NULL;
  char *key = strtok_r(line, " \t\r\n", &save);
  if (!key) return;
  struct dir *d = !strcmp(key, dirs[0].key) ? &dirs[0] : !strcmp(key, dirs[1].key) ? &dirs[1] : NULL;
  if (!d) {
    fprintf(stderr, "falcon-impair: config: unknown direction \"%s\" (ignored)\n", key);
    return;
  }
  struct conf c = {0};
  c.limit = DEFAULT_LIMIT;
  for (char *kv; (kv = strtok_r(NULL, " \t\r\n", &save));) {
    char *eq = strchr(kv, '=');
    if (!eq) continue;
    *eq = 0;
    const char *v = eq + 1;
    if (!strcmp(kv, "delay_ms")) c.delay_ns = strtod(v, NULL) * 1e6;
    else if (!strcmp(kv, "jitter_ms")) c.jitter_ns = strtod(v, NULL) * 1e6;
    else if (!strcmp(kv, "loss_pct")) c.loss = pct(v);
    else if (!strcmp(kv, "duplicate_pct")) c.duplicate = pct(v);
    else if (!strcmp(kv, "corrupt_pct")) c.corrupt = pct(v);
    else if (!strcmp(kv, "reorder_pct")) c.reorder = pct(v);
    else if (!strcmp(kv, "rate_mbit")) c.rate_bps = strtod(v, NULL) * 1e6;
    else if (!strcmp(kv, "limit")) c.limit = (unsigned)strtoul(v, NULL, 10);
    else fprintf(stderr, "falcon-impair: config: unknown key \"%s\" (ignored)\n", kv);
  }
  if (c.limit == 0) c.limit = DEFAULT_LIMIT;
  d->c = c;
}

static void load_config(const char *path, struct dir *dirs) {
  FILE *f = fopen(path, "r");
  if (!f) {
    fprintf(stderr, "falcon-impair: cannot read %s: %s (keeping the current settings)\n", path, strerror(errno));
    return;
  }
  /* A direction missing from the file passes frames unchanged. */
  for (int i = 0; i < 2; i++) {
    memset(&dirs[i].c, 0, sizeof dirs[i].c);
    dirs[i].c.limit = DEFAULT_LIMIT;
  }
  char line[1024];
  while (fgets(line, sizeof line, f)) parse_line(line, dirs);
  fclose(f);
}

/* Offloads on unless the direction corrupts (see the top of this file). */
static void set_offloads(struct dir *d) {
  int want = d->c.corrupt <= 0;
  if (want == d->offloads) return;
  if (ioctl(d->fd, TUNSETOFFLOAD, want ? (unsigned long)OFFLOADS : 0ul) < 0) {
    fprintf(stderr, "falcon-impair: cannot set offloads on %s: %s\n", d->tap, strerror(errno));
    return;
  }
  d->offloads = want;
}

static int open_tap(const char *name) {
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) die("open /dev/net/tun");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    fprintf(stderr, "falcon-impair: cannot create tap %s: %s\n", name, strerror(errno));
    exit(1);
  }
  /* The host must not talk on a topology's links: no IPv6 link-local address, no DAD, no RS. */
  char path[128];
  snprintf(path, sizeof path, "/proc/sys/net/ipv6/conf/%s/disable_ipv6", name);
  int p = open(path, O_WRONLY | O_CLOEXEC);
  if (p >= 0) {
    if (write(p, "1", 1) < 0) { /* IPv6 may be off already */ }
    close(p);
  }
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  if (ioctl(s, SIOCGIFFLAGS, &ifr) < 0) die("SIOCGIFFLAGS");
  ifr.ifr_flags |= IFF_UP;
  if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) die("SIOCSIFFLAGS");
  close(s);
  return fd;
}

static void write_file_atomic(const char *path, const char *text) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return;
  size_t len = strlen(text);
  int ok = write(fd, text, len) == (ssize_t)len;
  close(fd);
  if (!ok || rename(tmp, path) < 0) unlink(tmp);
}

static void write_stats(const char *path, struct dir *dirs) {
  char buf[2048];
  size_t off = 0;
  off += (size_t)snprintf(buf + off, sizeof buf - off, "{");
  for (int i = 0; i < 2; i++) {
    struct dir *d = &dirs[i];
    off += (size_t)snprintf(buf + off, sizeof buf - off,
                            "%s\"%s\":{\"rx\":%llu,\"tx\":%llu,\"lost\":%llu,\"queueDrops\":%llu,\"duplicated\":%llu,"
                            "\"corrupted\":%llu,\"reordered\":%llu,\"writeErrors\":%llu,\"queued\":%zu}",
                            i ? "," : "", d->key, (unsigned long long)d->rx, (unsigned long long)d->tx, (unsigned long long)d->lost,
                            (unsigned long long)d->queue_drops, (unsigned long long)d->duplicated, (unsigned long long)d->corrupted,
                            (unsigned long long)d->reordered, (unsigned long long)d->write_errors, d->n);
  }
  snprintf(buf + off, sizeof buf - off, "}\n");
  write_file_atomic(path, buf);
}

static void enqueue(struct dir *d, const unsigned char *frame, uint32_t len, uint64_t now, int corrupt) {
  if (d->n >= d->c.limit) {
    d->queue_drops++;
    return;
  }
  struct pkt *p = malloc(sizeof *p + len);
  if (!p) die("malloc");
  memcpy(p->data, frame, len);
  p->len = len;
  const struct virtio_net_hdr *h = (const struct virtio_net_hdr *)p->data;
  /* Only a complete frame: a segment or a frame without its checksum is left alone (offloads
     are off while corrupting, so these are the few already queued when they were turned off). */
  if (corrupt && len > VNET_HDR && h->flags == 0 && h->gso_type == VIRTIO_NET_HDR_GSO_NONE) {
    uint64_t bit = rnd64() % ((uint64_t)(len - VNET_HDR) * 8);
    p->data[VNET_HDR + bit / 8] ^= (unsigned char)(1u << (bit % 8));
    d->corrupted++;
  }
  uint64_t t = now;
  if (d->c.rate_bps > 0 && len > VNET_HDR) {
    uint64_t start = d->tx_end > now ? d->tx_end : now;
    d->tx_end = start + (uint64_t)((double)(len - VNET_HDR) * 8.0 * 1e9 / d->c.rate_bps);
    t = d->tx_end;
  }
  double delay = d->c.delay_ns;
  if (d->c.jitter_ns > 0) delay += (rnd() * 2.0 - 1.0) * d->c.jitter_ns;
  if (delay < 0) delay = 0;
  if (d->c.reorder > 0 && delay > 0 && rnd() < d->c.reorder) {
    delay = 0;
    d->reordered++;
  }
  p->due = t + (uint64_t)delay;
  p->seq = seq_counter++;
  heap_push(d, p);
}

static void receive(struct dir *d, const unsigned char *frame, uint32_t len, uint64_t now) {
  d->rx++;
  stats_dirty = 1;
  if (d->c.loss > 0 && rnd() < d->c.loss) {
    d->lost++;
    return;
  }
  int copies = 1;
  if (d->c.duplicate > 0 && rnd() < d->c.duplicate) {
    copies = 2;
    d->duplicated++;
  }
  for (int i = 0; i < copies; i++) enqueue(d, frame, len, now, d->c.corrupt > 0 && rnd() < d->c.corrupt);
}

static void send_due(struct dir *d, uint64_t now) {
  while (d->n && d->heap[0]->due <= now) {
    struct pkt *p = heap_pop(d);
    if (write(d->fd, p->data, p->len) == (ssize_t)p->len) d->tx++;
    else d->write_errors++;
    free(p);
    stats_dirty = 1;
  }
}

static const char *arg_value(int argc, char **argv, const char *name) {
  for (int i = 1; i + 1 < argc; i++)
    if (!strcmp(argv[i], name)) return argv[i + 1];
  fprintf(stderr, "falcon-impair: missing %s\nusage: falcon-impair --tap-ab NAME --tap-ba NAME --config FILE --stats FILE --pid-file FILE\n", name);
  exit(2);
}

int main(int argc, char **argv) {
  const char *config = arg_value(argc, argv, "--config");
  const char *stats = arg_value(argc, argv, "--stats");
  const char *pid_file = arg_value(argc, argv, "--pid-file");
  struct dir dirs[2] = {{.key = "ab", .tap = arg_value(argc, argv, "--tap-ab")}, {.key = "ba", .tap = arg_value(argc, argv, "--tap-ba")}};

  if (getrandom(&rng_state, sizeof rng_state, 0) != sizeof rng_state || !rng_state) rng_state = now_ns() | 1;

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGHUP);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) die("sigprocmask");
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");

  load_config(config, dirs);
  for (int i = 0; i < 2; i++) {
    dirs[i].fd = open_tap(dirs[i].tap);
    set_offloads(&dirs[i]);
  }

  char pid[32];
  snprintf(pid, sizeof pid, "%d\n", (int)getpid());
  write_file_atomic(pid_file, pid);
  write_stats(stats, dirs);

  static unsigned char frame[MAX_FRAME];
  uint64_t last_stats = now_ns();
  for (;;) {
    uint64_t now = now_ns();
    for (int i = 0; i < 2; i++) send_due(&dirs[i], now);

    uint64_t next = UINT64_MAX;
    for (int i = 0; i < 2; i++)
      if (dirs[i].n && dirs[i].heap[0]->due < next) next = dirs[i].heap[0]->due;
    if (stats_dirty) {
      uint64_t at = last_stats + STATS_INTERVAL_NS;
      if (at < next) next = at;
    }
    struct timespec ts, *tsp = NULL;
    if (next != UINT64_MAX) {
      uint64_t wait = next > now ? next - now : 0;
      ts.tv_sec = (time_t)(wait / 1000000000ull);
      ts.tv_nsec = (long)(wait % 1000000000ull);
      tsp = &ts;
    }
    struct pollfd pfd[3] = {{.fd = dirs[0].fd, .events = POLLIN}, {.fd = dirs[1].fd, .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
    if (ppoll(pfd, 3, tsp, NULL) < 0 && errno != EINTR) die("ppoll");

    now = now_ns();
    for (int i = 0; i < 2; i++) {
      if (!(pfd[i].revents & POLLIN)) continue;
      /* Bounded, so a flood in one direction cannot starve the other or the timers. */
      for (int k = 0; k < 256; k++) {
        ssize_t len = read(dirs[i].fd, frame, sizeof frame);
        if (len <= 0) break;
        if ((size_t)len <= VNET_HDR) continue;
        receive(&dirs[i], frame, (uint32_t)len, now);
      }
    }
    if (pfd[2].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGHUP) {
          load_config(config, dirs);
          for (int i = 0; i < 2; i++) set_offloads(&dirs[i]);
          stats_dirty = 1;
        } else {
          write_stats(stats, dirs);
          return 0;
        }
      }
    }
    if (stats_dirty && now - last_stats >= STATS_INTERVAL_NS) {
      write_stats(stats, dirs);
      stats_dirty = 0;
      last_stats = now;
    }
  }
}
