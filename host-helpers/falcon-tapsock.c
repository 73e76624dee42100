/*
 * falcon-tapsock: joins an existing tap device to one port of a Falcon switch (SoftNPU), whose
 * port is a unix stream socket speaking QEMU's `-netdev stream` framing: each Ethernet frame is
 * a 4-byte big-endian length, then the frame, both ways.
 *
 * In a Kubernetes pod, a switch port whose peer is in another pod is a VXLAN tunnel: a persistent
 * tap `swp<N>` (made beforehand with `ip tuntap add swp<N> mode tap`, wired by tc mirred to a
 * vxlan device). This helper is the switch's peer on that port's socket: what the tap transmits
 * goes to the switch, what the switch sends goes out of the tap.
 *
 * Usage:
 *   falcon-tapsock --tap NAME --socket PATH [--pid-file FILE]
 *
 * The tap must exist: the helper attaches to it and never creates it, and leaves its persistence
 * alone, so the tap and its tc wiring outlive the helper. The helper is the socket's client: the
 * switch serves it and may start later or restart, so the helper connects every 100 ms until it
 * gets through, and again the same way after a disconnect; frames from the tap are dropped while
 * it is not connected (a link without its switch loses frames, as a cable would).
 *
 * The socket is written without blocking through a 256 KiB buffer: when the switch reads too
 * slowly and the buffer is full, frames from the tap are dropped (and counted) rather than left
 * to back up into the tap. A length of 0 or over MAX_FRAME from the switch is a protocol error:
 * the helper drops the connection and connects again.
 *
 * The pid file, when asked for, is written (atomically) once the tap is attached. stderr has one
 * line per connect and disconnect, never one per frame. SIGTERM or SIGINT: exit 0. A missing or
 * unusable tap, or bad arguments: one line saying what and how to fix it, exit 2; an unexpected
 * system call failure later: exit 1.
 *
 * Build: gcc -static -O2 -std=c11 -Wall -Wextra -o falcon-tapsock falcon-tapsock.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A 64 KiB frame plus headers: more than any tap MTU gives, and what a sane peer sends. */
#define MAX_FRAME (65536 + 256)
#define OUT_CAP (256 * 1024)
#define IN_CAP (256 * 1024)
#define RETRY_NS 100000000ull
/* Bounded work per wake-up, so a flood one way cannot starve the other way or the signals. */
#define BATCH 256

static const char *tap_name, *sock_path;
static struct sockaddr_un sock_addr;

static int sock = -1;
static unsigned char out_buf[OUT_CAP];
static size_t out_off, out_len;
static unsigned char in_buf[IN_CAP];
static size_t in_len;
static int warned_full; /* once per connection: the out buffer filled up */

static struct {
  uint64_t tap_rx, to_switch, dropped_down, dropped_full, from_switch, tap_write_errors;
} st;

static void die(const char *what) {
  fprintf(stderr, "falcon-tapsock: tap %s: %s: %s\n", tap_name ? tap_name : "?", what, strerror(errno));
  exit(1);
}

/* A setup error the user can fix: one line, exit 2. */
static void fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("falcon-tapsock: ", stderr);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(2);
}

static void usage(const char *why) {
  fatal("%s (usage: falcon-tapsock --tap NAME --socket PATH [--pid-file FILE])", why);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void write_file_atomic(const char *path, const char *text) {
  char tmp[4096];
  snprintf(tmp, sizeof tmp, "%s.tmp-%d", path, (int)getpid());
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) fatal("cannot write the pid file %s: %s: check that its folder exists and is writable", path, strerror(errno));
  size_t len = strlen(text);
  int ok = write(fd, text, len) == (ssize_t)len;
  close(fd);
  if (!ok || rename(tmp, path) < 0) {
    int e = errno;
    unlink(tmp);
    fatal("cannot write the pid file %s: %s", path, strerror(e));
  }
}

/*
 * Attaches to the existing tap. TUNSETIFF with a name that does not exist would create a new
 * tap, so the name is checked first, and a tap that is not persistent after attaching (one this
 * call created, if the tap vanished in between) is let go at once.
 */
static int open_tap(const char *name) {
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0) die("socket");
  int missing = ioctl(s, SIOCGIFINDEX, &ifr) < 0 && errno == ENODEV;
  close(s);
  if (missing) fatal("tap %s does not exist in this network namespace: create it first (ip tuntap add %s mode tap)", name, name);

  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    fatal("tap %s: cannot open /dev/net/tun: %s: load the tun module (modprobe tun), or give the container the device /dev/net/tun", name,
          strerror(errno));
  memset(&ifr, 0, sizeof ifr);
  ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
  snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int e = errno;
    if (e == EINVAL) {
      /* Which kind of device it is decides the fix: tun_flags exists for tun and tap devices only. */
      char path[128], flags[32] = "";
      snprintf(path, sizeof path, "/sys/class/net/%s/tun_flags", name);
      int f = open(path, O_RDONLY | O_CLOEXEC);
      if (f >= 0) {
        ssize_t n = read(f, flags, sizeof flags - 1);
        flags[n > 0 ? n : 0] = 0;
        close(f);
      }
      if (!*flags) fatal("%s is not a tap device: give --tap the name of the switch port's tap (ip tuntap add NAME mode tap)", name);
      fatal("%s is a tun or a multi-queue tap (tun_flags %s), not a plain tap: recreate it (ip link del %s; ip tuntap add %s mode tap)", name,
            strtok(flags, "\n"), name, name);
    }
    if (e == EBUSY) fatal("tap %s is already in use by another process (another falcon-tapsock, or QEMU): stop that one first", name);
    if (e == EPERM || e == EACCES)
      fatal("not allowed to attach to tap %s: %s: run as root (CAP_NET_ADMIN), or create the tap for this user (ip tuntap add %s mode tap user USER)", name,
            strerror(e), name);
    fatal("cannot attach to tap %s: %s", name, strerror(e));
  }
  if (ioctl(fd, TUNGETIFF, &ifr) < 0) die("TUNGETIFF");
  if (!(ifr.ifr_flags & IFF_PERSIST)) {
    close(fd); /* destroys the tap this process just created */
    fatal("tap %s does not exist (or is not persistent): create it first (ip tuntap add %s mode tap)", name, name);
  }
  return fd;
}

static int try_connect(int *err) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) die("socket");
  /* A unix connect completes at once or fails (EAGAIN when the listener's backlog is full). */
  if (connect(fd, (const struct sockaddr *)&sock_addr, sizeof sock_addr) == 0) return fd;
  *err = errno;
  close(fd);
  return -1;
}

static void disconnect(const char *why) {
  close(sock);
  sock = -1;
  /* A half-sent frame would put the next connection's stream out of step: start both afresh. */
  out_off = out_len = in_len = 0;
  fprintf(stderr,
          "falcon-tapsock: tap %s: disconnected from %s (%s); connecting again every 100 ms, dropping frames from the tap meanwhile"
          " (dropped so far: %llu while disconnected, %llu with the buffer full)\n",
          tap_name, sock_path, why, (unsigned long long)st.dropped_down, (unsigned long long)st.dropped_full);
}

/* Sends what is buffered, as far as the socket takes it. 0, or -1 after a disconnect. */
static int flush_out(void) {
  while (out_off < out_len) {
    ssize_t n = send(sock, out_buf + out_off, out_len - out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      out_off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    disconnect(n < 0 ? strerror(errno) : "write returned 0");
    return -1;
  }
  if (out_off == out_len) out_off = out_len = 0;
  return 0;
}

static void queue_frame(const unsigned char *frame, uint32_t len) {
  size_t need = 4 + (size_t)len;
  if (out_len + need > OUT_CAP && out_off > 0) {
    memmove(out_buf, out_buf + out_off, out_len - out_off);
    out_len -= out_off;
    out_off = 0;
  }
  if (out_len + need > OUT_CAP) {
    st.dropped_full++;
    if (!warned_full) {
      warned_full = 1;
      fprintf(stderr, "falcon-tapsock: tap %s: the switch at %s reads too slowly (256 KiB buffered): dropping frames from the tap until it catches up\n",
              tap_name, sock_path);
    }
    return;
  }
  unsigned char *p = out_buf + out_len;
  p[0] = (unsigned char)(len >> 24);
  p[1] = (unsigned char)(len >> 16);
  p[2] = (unsigned char)(len >> 8);
  p[3] = (unsigned char)len;
  memcpy(p + 4, frame, len);
  out_len += need;
  st.to_switch++;
}

static void read_tap(int tap) {
  static unsigned char frame[MAX_FRAME];
  for (int k = 0; k < BATCH; k++) {
    ssize_t len = read(tap, frame, sizeof frame);
    if (len < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) break;
      fprintf(stderr, "falcon-tapsock: tap %s went away: %s\n", tap_name, strerror(errno));
      exit(1);
    }
    if (len == 0) break;
    st.tap_rx++;
    if (sock < 0) st.dropped_down++;
    else queue_frame(frame, (uint32_t)len);
  }
  if (sock >= 0) flush_out();
}

/* Writes the complete frames in in_buf to the tap; keeps a partial one. -1 on a bad length. */
static int deliver(int tap) {
  size_t off = 0;
  while (in_len - off >= 4) {
    const unsigned char *p = in_buf + off;
    uint32_t len = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
    if (len == 0 || len > MAX_FRAME) {
      char why[96];
      snprintf(why, sizeof why, "protocol error: frame length %u", len);
      disconnect(why);
      return -1;
    }
    if (in_len - off - 4 < len) break;
    st.from_switch++;
    if (write(tap, p + 4, len) != (ssize_t)len) st.tap_write_errors++;
    off += 4 + len;
  }
  if (off) {
    memmove(in_buf, in_buf + off, in_len - off);
    in_len -= off;
  }
  return 0;
}

static void read_socket(int tap) {
  for (int k = 0; k < BATCH && sock >= 0; k++) {
    ssize_t n = recv(sock, in_buf + in_len, IN_CAP - in_len, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      disconnect(strerror(errno));
      return;
    }
    if (n == 0) {
      disconnect("the switch closed the socket");
      return;
    }
    in_len += (size_t)n;
    if (deliver(tap) < 0) return;
  }
}

static const char *arg_of(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    char why[128];
    snprintf(why, sizeof why, "%s needs a value", argv[*i]);
    usage(why);
  }
  return argv[++*i];
}

int main(int argc, char **argv) {
  const char *pid_file = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--tap")) tap_name = arg_of(argc, argv, &i);
    else if (!strcmp(argv[i], "--socket")) sock_path = arg_of(argc, argv, &i);
    else if (!strcmp(argv[i], "--pid-file")) pid_file = arg_of(argc, argv, &i);
    else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      printf("usage: falcon-tapsock --tap NAME --socket PATH [--pid-file FILE]\n");
      return 0;
    } else {
      char why[160];
      snprintf(why, sizeof why, "unknown argument \"%.100s\"", argv[i]);
      usage(why);
    }
  }
  if (!tap_name) usage("missing --tap NAME (the existing tap to join)");
  if (!sock_path) usage("missing --socket PATH (the switch port's unix socket)");
  if (!*tap_name || strlen(tap_name) >= IFNAMSIZ || strchr(tap_name, '/'))
    fatal("\"%s\" is not a network interface name (1 to %d characters, no '/')", tap_name, IFNAMSIZ - 1);
  if (!*sock_path || strlen(sock_path) >= sizeof sock_addr.sun_path)
    fatal("tap %s: the socket path \"%s\" is empty or longer than %zu bytes: use a shorter path", tap_name, sock_path, sizeof sock_addr.sun_path - 1);
  sock_addr.sun_family = AF_UNIX;
  memcpy(sock_addr.sun_path, sock_path, strlen(sock_path));

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0) die("sigprocmask");
  int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
  if (sfd < 0) die("signalfd");
  signal(SIGPIPE, SIG_IGN);

  int tap = open_tap(tap_name);
  if (pid_file) {
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    write_file_atomic(pid_file, pid);
  }

  uint64_t next_try = 0;
  int waiting_said = 0; /* the "waiting" line is printed once per wait, not once per attempt */
  for (;;) {
    uint64_t now = now_ns();
    if (sock < 0 && now >= next_try) {
      int err = 0;
      sock = try_connect(&err);
      if (sock >= 0) {
        waiting_said = 0;
        warned_full = 0;
        fprintf(stderr, "falcon-tapsock: tap %s: connected to %s\n", tap_name, sock_path);
      } else {
        if (!waiting_said) {
          waiting_said = 1;
          fprintf(stderr, "falcon-tapsock: tap %s: waiting for the switch at %s (%s); trying every 100 ms\n", tap_name, sock_path, strerror(err));
        }
        next_try = now + RETRY_NS;
      }
    }

    struct pollfd pfd[3] = {
        {.fd = tap, .events = POLLIN},
        {.fd = sfd, .events = POLLIN},
        {.fd = sock, .events = (short)(POLLIN | (out_off < out_len ? POLLOUT : 0))},
    };
    struct timespec ts, *tsp = NULL;
    if (sock < 0) {
      uint64_t wait = next_try > now ? next_try - now : 0;
      ts.tv_sec = (time_t)(wait / 1000000000ull);
      ts.tv_nsec = (long)(wait % 1000000000ull);
      tsp = &ts;
    }
    /* A negative fd is ignored by poll: no socket while disconnected. */
    if (ppoll(pfd, 3, tsp, NULL) < 0) {
      if (errno == EINTR) continue;
      die("ppoll");
    }

    if (pfd[1].revents & POLLIN) {
      struct signalfd_siginfo si;
      if (read(sfd, &si, sizeof si) == sizeof si) {
        fprintf(stderr, "falcon-tapsock: tap %s: exiting on signal %u (frames: %llu to the switch, %llu from it, dropped %llu disconnected + %llu buffer full)\n",
                tap_name, si.ssi_signo, (unsigned long long)st.to_switch, (unsigned long long)st.from_switch, (unsigned long long)st.dropped_down,
                (unsigned long long)st.dropped_full);
        return 0;
      }
    }
    if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL) && !(pfd[0].revents & POLLIN)) {
      fprintf(stderr, "falcon-tapsock: tap %s went away (it was deleted?)\n", tap_name);
      return 1;
    }
    if (pfd[2].revents & POLLOUT) {
      if (flush_out() < 0) next_try = now_ns() + RETRY_NS;
    }
    if (sock >= 0 && pfd[2].revents & (POLLIN | POLLHUP | POLLERR)) {
      read_socket(tap);
      if (sock < 0) next_try = now_ns() + RETRY_NS;
    }
    if (pfd[0].revents & POLLIN) {
      int was = sock;
      read_tap(tap);
      if (was >= 0 && sock < 0) next_try = now_ns() + RETRY_NS;
    }
  }
}
