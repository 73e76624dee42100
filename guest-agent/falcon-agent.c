/*
 * falcon-agent: runs commands for the Falcon host over a virtio-serial port.
 *
 * Protocol: see docs/exec-channel.md. Length-prefixed binary frames
 *   magic u32 'FALC' | type u8 | flags u8 | reserved u16 | id u64 | length u32 | payload
 * (big-endian), multiplexed by request id. One host client (session) at a time; each EXEC
 * runs `/bin/sh -c CMD` in its own process group, all driven by one poll() loop.
 *
 * Usage:
 *   falcon-agent                    find the port named org.falcon.exec in sysfs (waits for it)
 *   falcon-agent /dev/vport0p1      use this character device
 *   falcon-agent --unix-listen PATH serve on a Unix socket, one client at a time (host tests)
 *
 * Build: gcc -static -O2 -std=c11 -Wall -Wextra -o falcon-agent falcon-agent.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define AGENT_VERSION "1.0"
#define PROTO_VERSION 1u
#define MAGIC 0x46414C43u /* "FALC" */
#define HDR 20u
#define MAX_PAYLOAD (1u << 20)
#define CHUNK (64u * 1024u)
#define OUT_HIGH_WATER (1u << 20)          /* stop reading children while this much is unsent */
#define STDIN_LIMIT (256u * 1024u * 1024u) /* per request, a guard against runaway input */
#define MAX_REQS 64
#define PORT_NAME "org.falcon.exec"

#define DISCONNECTED_PROBE_MS 100 /* how often to look for a new host while none is connected */
#define PARTIAL_FRAME_IDLE_MS 2000 /* drop a partial frame left over by a dead client */
#define DRAIN_GRACE_MS 250         /* after exit, wait this long for pipe EOF (background jobs) */
#define DRAIN_HARD_MS 2000
#define SESSION_KILL_GRACE_MS 2000
#define MAX_KILL_GRACE_MS 60000

enum {
  T_HELLO = 0x01,
  T_EXEC = 0x02,
  T_STDIN = 0x03,
  T_KILL = 0x04,
  T_PING = 0x05,
  T_HELLO_ACK = 0x81,
  T_STARTED = 0x82,
  T_STDOUT = 0x83,
  T_STDERR = 0x84,
  T_EXIT = 0x85,
  T_ERROR = 0x86,
  T_PONG = 0x87,
};

#define EXEC_FLAG_STDIN 1u

struct buf {
  uint8_t *p;
  size_t off, len, cap; /* live bytes are p[off .. len) */
};

struct req {
  int used;
  int orphan; /* its session ended: no output is sent, the slot frees once reaped */
  uint64_t id;
  pid_t pid;
  int exited, status;
  int out_fd, err_fd, in_fd;
  int in_close_pending; /* host sent stdin EOF: close once inq is written */
  struct buf inq;
  int64_t exit_at, kill_at;
};

static struct req reqs[MAX_REQS];
static struct buf inbuf, outq;
static int chan_fd = -1, listen_fd = -1;
static int connected;
static int hello_done;
static uint64_t session_id;
static int64_t last_rx_at, next_probe_at;
static int sig_pipe[2] = {-1, -1};
static const char *unix_path;
static const char *dev_path;
static int verbose;

static void logmsg(const char *fmt, ...) {
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  dprintf(2, "falcon-agent: %s\n", line);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
  }
}

/* ---- buffers ---- */

static void buf_reserve(struct buf *b, size_t extra) {
  if (b->off > 0 && (b->off == b->len || b->off > b->cap / 2)) {
    memmove(b->p, b->p + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
  if (b->len + extra <= b->cap) return;
  size_t cap = b->cap ? b->cap : 4096;
  while (cap < b->len + extra) cap *= 2;
  uint8_t *p = realloc(b->p, cap);
  if (!p) {
    logmsg("out of memory");
    abort();
  }
  b->p = p;
  b->cap = cap;
}

static size_t buf_used(const struct buf *b) { return b->len - b->off; }

static void buf_clear(struct buf *b) { b->off = b->len = 0; }

static void buf_free(struct buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

static void put_u16(uint8_t *p, uint16_t v) {
  p[0] = (uint8_t)(v >> 8);
  p[1] = (uint8_t)v;
}
static void put_u32(uint8_t *p, uint32_t v) {
  p[0] = (uint8_t)(v >> 24);
  p[1] = (uint8_t)(v >> 16);
  p[2] = (uint8_t)(v >> 8);
  p[3] = (uint8_t)v;
}
static void put_u64(uint8_t *p, uint64_t v) {
  put_u32(p, (uint32_t)(v >> 32));
  put_u32(p + 4, (uint32_t)v);
}
static uint32_t get_u32(const uint8_t *p) {
  return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)get_u32(p) << 32 | get_u32(p + 4); }

static void put_header(uint8_t *p, uint8_t type, uint64_t id, uint32_t len) {
  put_u32(p, MAGIC);
  p[4] = type;
  p[5] = 0;
  put_u16(p + 6, 0);
  put_u64(p + 8, id);
  put_u32(p + 16, len);
}

static void send_frame(uint8_t type, uint64_t id, const void *payload, uint32_t len) {
  if (!connected) return;
  buf_reserve(&outq, HDR + len);
  put_header(outq.p + outq.len, type, id, len);
  if (len) memcpy(outq.p + outq.len + HDR, payload, len);
  outq.len += HDR + len;
}

static void send_error(uint64_t id, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  if ((size_t)n >= sizeof msg) n = sizeof msg - 1;
  send_frame(T_ERROR, id, msg, (uint32_t)n);
}

/* ---- requests ---- */

static struct req *find_req(uint64_t id) {
  for (int i = 0; i < MAX_REQS; i++)
    if (reqs[i].used && !reqs[i].orphan && reqs[i].id == id) return &reqs[i];
  return NULL;
}

static void close_fd(int *fd) {
  if (*fd >= 0) close(*fd);
  *fd = -1;
}

static void req_free(struct req *r) {
  close_fd(&r->out_fd);
  close_fd(&r->err_fd);
  close_fd(&r->in_fd);
  buf_free(&r->inq);
  memset(r, 0, sizeof *r);
  r->out_fd = r->err_fd = r->in_fd = -1;
}

/* SIGTERM the process group now, SIGKILL it after grace_ms. */
static void req_kill(struct req *r, uint32_t grace_ms) {
  if (r->exited) return;
  if (grace_ms > MAX_KILL_GRACE_MS) grace_ms = MAX_KILL_GRACE_MS;
  kill(-r->pid, grace_ms ? SIGTERM : SIGKILL);
  kill(-r->pid, SIGCONT); /* a stopped group would never see the SIGTERM */
  int64_t at = now_ms() + grace_ms;
  if (!r->kill_at || at < r->kill_at) r->kill_at = at;
}

/* The client went away or a new one said hello: its commands must not outlive it. */
static void end_session(const char *why) {
  int n = 0;
  for (int i = 0; i < MAX_REQS; i++) {
    struct req *r = &reqs[i];
    if (!r->used || r->orphan) continue;
    n++;
    r->orphan = 1;
    close_fd(&r->out_fd); /* writers get SIGPIPE, which speeds their end */
    close_fd(&r->err_fd);
    close_fd(&r->in_fd);
    buf_free(&r->inq);
    if (r->exited)
      req_free(r);
    else
      req_kill(r, SESSION_KILL_GRACE_MS);
  }
  if (n || verbose) logmsg("session %016llx ended (%s); killed %d running command(s)",
                           (unsigned long long)session_id, why, n);
  hello_done = 0;
  session_id = 0;
  buf_clear(&outq); /* frames for the old session; a new client resyncs on its HELLO_ACK */
}

static void maybe_finish(struct req *r) {
  if (!r->exited || r->out_fd >= 0 || r->err_fd >= 0) return;
  if (!r->orphan) {
    uint8_t p[8] = {0};
    int32_t v;
    if (WIFSIGNALED(r->status)) {
      p[0] = 1;
      v = WTERMSIG(r->status);
    } else {
      v = WEXITSTATUS(r->status);
    }
    put_u32(p + 4, (uint32_t)v);
    send_frame(T_EXIT, r->id, p, sizeof p);
  }
  req_free(r);
}

static const char *const BASE_ENV[] = {
    "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "USER=root", "LOGNAME=root",
    "SHELL=/bin/sh", "LANG=C.UTF-8", "TERM=dumb", NULL,
};

static int env_overridden(char **extra, size_t n, const char *base) {
  size_t klen = strcspn(base, "=") + 1;
  for (size_t i = 0; i < n; i++)
    if (strncmp(extra[i], base, klen) == 0) return 1;
  return 0;
}

/* In the child: never returns. */
static void run_child(const char *cmd, char **extra_env, size_t n_env, int in_fd, int out_fd,
                      int err_fd) {
  setsid(); /* own process group, so a kill reaches everything the command started */
  dup2(in_fd, 0);
  dup2(out_fd, 1);
  dup2(err_fd, 2);
  if (in_fd > 2) close(in_fd);
  if (out_fd > 2) close(out_fd);
  if (err_fd > 2) close(err_fd);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = SIG_DFL;
  for (int s = 1; s < NSIG; s++) sigaction(s, &sa, NULL); /* ignored signals survive exec */
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, NULL);
  if (chdir("/root") < 0 && chdir("/") < 0) {
  }
  size_t nb = sizeof BASE_ENV / sizeof BASE_ENV[0] - 1;
  char **env = calloc(nb + n_env + 1, sizeof *env);
  if (!env) _exit(127);
  size_t k = 0;
  for (size_t i = 0; i < nb; i++)
    if (!env_overridden(extra_env, n_env, BASE_ENV[i])) env[k++] = (char *)BASE_ENV[i];
  for (size_t i = 0; i < n_env; i++) env[k++] = extra_env[i];
  env[k] = NULL;
  char *argv[] = {"sh", "-c", (char *)cmd, NULL};
  execve("/bin/sh", argv, env);
  dprintf(2, "falcon-agent: cannot run /bin/sh: %s\n", strerror(errno));
  _exit(127);
}

/* EXEC payload: u32 flags | u32 cmd_len | cmd | u32 n_env | n_env * (u32 len | "K=V") */
static void handle_exec(uint64_t id, const uint8_t *p, uint32_t len) {
  if (id == 0) {
    send_error(0, "EXEC with request id 0");
    return;
  }
  if (find_req(id)) {
    send_error(id, "request id %016llx is already running", (unsigned long long)id);
    return;
  }
  struct req *r = NULL;
  for (int i = 0; i < MAX_REQS && !r; i++)
    if (!reqs[i].used) r = &reqs[i];
  if (!r) {
    send_error(id, "too many concurrent commands (limit %d); wait for some to finish", MAX_REQS);
    return;
  }
  if (len < 12) goto bad;
  uint32_t flags = get_u32(p);
  uint32_t cmd_len = get_u32(p + 4);
  if (cmd_len > len - 12) goto bad;
  const uint8_t *cmdp = p + 8;
  size_t pos = 8 + (size_t)cmd_len;
  uint32_t n_env = get_u32(p + pos);
  pos += 4;
  if (n_env > len / 4) goto bad;
  if (memchr(cmdp, 0, cmd_len)) {
    send_error(id, "the command contains a NUL byte");
    return;
  }
  char *cmd = strndup((const char *)cmdp, cmd_len);
  char **env = calloc((size_t)n_env + 1, sizeof *env);
  if (!cmd || !env) {
    free(cmd);
    free(env);
    send_error(id, "out of memory");
    return;
  }
  size_t got = 0;
  const char *err = NULL;
  for (; got < n_env; got++) {
    if (pos + 4 > len) break;
    uint32_t l = get_u32(p + pos);
    pos += 4;
    if (l > len - pos) break;
    const uint8_t *e = p + pos;
    pos += l;
    if (memchr(e, 0, l) || !memchr(e, '=', l) || e[0] == '=') {
      err = "environment entries must be NAME=VALUE without NUL bytes";
      break;
    }
    env[got] = strndup((const char *)e, l);
    if (!env[got]) {
      err = "out of memory";
      break;
    }
  }
  int ok = got == n_env && !err;
  if (ok) {
    int in_p[2], out_p[2], err_p[2];
    int opened = 0;
    if (pipe2(in_p, O_CLOEXEC) == 0) {
      opened = 1;
      if (pipe2(out_p, O_CLOEXEC) == 0) {
        opened = 2;
        if (pipe2(err_p, O_CLOEXEC) == 0) opened = 3;
      }
    }
    if (opened < 3) {
      send_error(id, "cannot create pipes: %s", strerror(errno));
      if (opened >= 1) close(in_p[0]), close(in_p[1]);
      if (opened >= 2) close(out_p[0]), close(out_p[1]);
    } else {
      pid_t pid = fork();
      if (pid == 0) run_child(cmd, env, n_env, in_p[0], out_p[1], err_p[1]);
      close(in_p[0]);
      close(out_p[1]);
      close(err_p[1]);
      if (pid < 0) {
        send_error(id, "fork failed: %s", strerror(errno));
        close(in_p[1]);
        close(out_p[0]);
        close(err_p[0]);
      } else {
        memset(r, 0, sizeof *r);
        r->used = 1;
        r->id = id;
        r->pid = pid;
        r->in_fd = in_p[1];
        r->out_fd = out_p[0];
        r->err_fd = err_p[0];
        fcntl(r->in_fd, F_SETFL, O_NONBLOCK);
        fcntl(r->out_fd, F_SETFL, O_NONBLOCK);
        fcntl(r->err_fd, F_SETFL, O_NONBLOCK);
        if (!(flags & EXEC_FLAG_STDIN)) close_fd(&r->in_fd);
        uint8_t pp[4];
        put_u32(pp, (uint32_t)pid);
        send_frame(T_STARTED, id, pp, 4);
      }
    }
  } else {
    send_error(id, "%s", err ? err : "malformed EXEC environment");
  }
  for (size_t i = 0; i < got; i++) free(env[i]);
  free(env);
  free(cmd);
  return;
bad:
  send_error(id, "malformed EXEC payload (%u bytes)", len);
}

static void handle_frame(uint8_t type, uint64_t id, const uint8_t *p, uint32_t len) {
  if (verbose && type != T_STDIN) logmsg("< %s id=%016llx len=%u", type == T_HELLO ? "HELLO" : type == T_EXEC ? "EXEC" : type == T_KILL ? "KILL" : "frame",
                      (unsigned long long)id, len);
  if (type == T_HELLO) {
    uint32_t ver = len >= 4 ? get_u32(p) : 0;
    if (hello_done && id == session_id) { /* a resent hello: same client */
    } else {
      if (hello_done || session_id) end_session("new client");
      session_id = id;
    }
    if (ver != PROTO_VERSION) {
      send_error(id, "protocol version %u is not supported; this agent (falcon-agent " AGENT_VERSION
                 ") speaks version %u: rebuild the guest image so host and agent match",
                 ver, PROTO_VERSION);
      return;
    }
    hello_done = 1;
    char ack[128];
    put_u32((uint8_t *)ack, PROTO_VERSION);
    int n = snprintf(ack + 4, sizeof ack - 4, "falcon-agent " AGENT_VERSION " pid %d", (int)getpid());
    send_frame(T_HELLO_ACK, id, ack, 4 + (uint32_t)n);
    return;
  }
  if (!hello_done) {
    send_error(id, "frame type 0x%02x before HELLO", type);
    return;
  }
  struct req *r;
  switch (type) {
    case T_EXEC:
      handle_exec(id, p, len);
      break;
    case T_STDIN:
      r = find_req(id);
      if (!r) break; /* the command already ended: drop its input */
      if (len == 0) {
        r->in_close_pending = 1;
        if (buf_used(&r->inq) == 0) close_fd(&r->in_fd);
      } else if (r->in_fd >= 0) {
        if (buf_used(&r->inq) + len > STDIN_LIMIT) {
          send_error(id, "more than %u bytes of stdin are pending; killing the command", STDIN_LIMIT);
          req_kill(r, 0);
          close_fd(&r->in_fd);
          buf_free(&r->inq);
          break;
        }
        buf_reserve(&r->inq, len);
        memcpy(r->inq.p + r->inq.len, p, len);
        r->inq.len += len;
      }
      break;
    case T_KILL:
      r = find_req(id);
      if (r) req_kill(r, len >= 4 ? get_u32(p) : SESSION_KILL_GRACE_MS);
      break;
    case T_PING:
      send_frame(T_PONG, id, p, len);
      break;
    default:
      send_error(id, "unknown frame type 0x%02x", type);
  }
}

/* Parse as many whole frames as the input holds; resynchronise on garbage. */
static void parse_input(void) {
  static const uint8_t magic[4] = {'F', 'A', 'L', 'C'};
  while (buf_used(&inbuf) >= HDR) {
    const uint8_t *h = inbuf.p + inbuf.off;
    uint32_t len = get_u32(h + 16);
    if (get_u32(h) != MAGIC || len > MAX_PAYLOAD) {
      /* Stale bytes from a client that died mid-frame: skip to the next magic. */
      const uint8_t *next = memmem(h + 1, buf_used(&inbuf) - 1, magic, 4);
      size_t skip = next ? (size_t)(next - h) : buf_used(&inbuf) - 3;
      if (verbose) logmsg("skipping %zu bytes of garbage", skip);
      inbuf.off += skip;
      continue;
    }
    if (buf_used(&inbuf) < HDR + len) break;
    inbuf.off += HDR + len;
    handle_frame(h[4], get_u64(h + 8), h + HDR, len);
    if (!connected) return; /* handle_frame may not disconnect, but be safe */
  }
  if (buf_used(&inbuf) == 0) buf_clear(&inbuf);
}

/* ---- the channel to the host ---- */

static void disconnect(const char *why) {
  end_session(why);
  buf_clear(&inbuf);
  connected = 0;
  if (unix_path) close_fd(&chan_fd);
  next_probe_at = now_ms() + DISCONNECTED_PROBE_MS;
}

static void read_channel(void) {
  for (int round = 0; round < 16 && chan_fd >= 0; round++) { /* bounded: others get a turn */
    buf_reserve(&inbuf, CHUNK);
    ssize_t n = read(chan_fd, inbuf.p + inbuf.len, CHUNK);
    if (n > 0) {
      if (!connected) {
        connected = 1;
        if (verbose) logmsg("host connected");
      }
      inbuf.len += (size_t)n;
      last_rx_at = now_ms();
      parse_input();
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!connected) connected = 1; /* a virtio port with a host on it and nothing to read */
      return;
    }
    /* 0: no host on the port (virtio) or EOF (socket); errors likewise end the session. */
    int e = n < 0 ? errno : 0;
    if (connected) disconnect(e ? strerror(e) : "host disconnected");
    else next_probe_at = now_ms() + DISCONNECTED_PROBE_MS;
    if (e == ENODEV && !unix_path) { /* the port was unplugged */
      close_fd(&chan_fd);
    }
    return;
  }
}

static void write_channel(void) {
  while (buf_used(&outq) > 0) {
    ssize_t n = write(chan_fd, outq.p + outq.off, buf_used(&outq));
    if (n > 0) {
      outq.off += (size_t)n;
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    disconnect(n < 0 ? strerror(errno) : "write returned 0");
    return;
  }
  buf_clear(&outq);
}

static int find_port(char *path, size_t size) {
  DIR *d = opendir("/sys/class/virtio-ports");
  if (!d) return -1;
  struct dirent *e;
  int found = -1;
  while ((e = readdir(d)) && found < 0) {
    if (e->d_name[0] == '.') continue;
    char p[512], name[256];
    snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/name", e->d_name);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ssize_t n = read(fd, name, sizeof name - 1);
    close(fd);
    if (n <= 0) continue;
    name[n] = 0;
    name[strcspn(name, "\n")] = 0;
    if (strcmp(name, PORT_NAME) != 0) continue;
    snprintf(path, size, "/dev/%s", e->d_name);
    struct stat st;
    if (stat(path, &st) < 0) {
      /* No devtmpfs/udev node yet: make one from the sysfs dev number. */
      unsigned maj, min;
      snprintf(p, sizeof p, "/sys/class/virtio-ports/%s/dev", e->d_name);
      fd = open(p, O_RDONLY | O_CLOEXEC);
      if (fd < 0) continue;
      n = read(fd, name, sizeof name - 1);
      close(fd);
      if (n <= 0) continue;
      name[n] = 0;
      if (sscanf(name, "%u:%u", &maj, &min) != 2) continue;
      if (mknod(path, S_IFCHR | 0600, makedev(maj, min)) < 0 && errno != EEXIST) continue;
    }
    found = 0;
  }
  closedir(d);
  return found;
}

/* Blocks until the channel is open (device) or listening (socket). */
static void open_channel(void) {
  static char found[300];
  int warned = 0;
  for (;;) {
    if (unix_path) {
      if (listen_fd >= 0) return;
      listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
      struct sockaddr_un a;
      memset(&a, 0, sizeof a);
      a.sun_family = AF_UNIX;
      if (strlen(unix_path) >= sizeof a.sun_path) {
        logmsg("socket path too long (max %zu bytes): %s", sizeof a.sun_path - 1, unix_path);
        exit(2);
      }
      strcpy(a.sun_path, unix_path);
      unlink(unix_path);
      if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&a, sizeof a) < 0 ||
          listen(listen_fd, 1) < 0) { /* backlog 1, as QEMU does */
        logmsg("cannot listen on %s: %s", unix_path, strerror(errno));
        exit(2);
      }
      chmod(unix_path, 0600);
      return;
    }
    const char *path = dev_path;
    if (!path && find_port(found, sizeof found) == 0) path = found;
    if (path) {
      chan_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
      if (chan_fd >= 0) {
        /* virtio_console signals SIGIO when a host connects: the loop probes at once instead
         * of waiting for the next timed probe. */
        if (fcntl(chan_fd, F_SETOWN, getpid()) < 0 || fcntl(chan_fd, F_SETFL, fcntl(chan_fd, F_GETFL) | O_ASYNC) < 0)
          logmsg("cannot ask for SIGIO on %s: %s; probing every %d ms", path, strerror(errno), DISCONNECTED_PROBE_MS);
        logmsg("serving on %s", path);
        connected = 0;
        next_probe_at = 0;
        return;
      }
      if (!warned) logmsg("cannot open %s: %s; retrying", path, strerror(errno));
    } else if (!warned) {
      logmsg("waiting for virtio port %s to appear in /sys/class/virtio-ports", PORT_NAME);
    }
    warned = 1;
    sleep_ms(200);
  }
}

static void on_sigchld(int s) {
  (void)s;
  int e = errno;
  if (write(sig_pipe[1], "c", 1) < 0) {
  }
  errno = e;
}

static void reap(void) {
  char tmp[64];
  while (read(sig_pipe[0], tmp, sizeof tmp) > 0) {
  }
  for (;;) {
    int st;
    pid_t pid = waitpid(-1, &st, WNOHANG);
    if (pid <= 0) return;
    for (int i = 0; i < MAX_REQS; i++) {
      struct req *r = &reqs[i];
      if (!r->used || r->pid != pid) continue;
      r->exited = 1;
      r->status = st;
      r->exit_at = now_ms();
      maybe_finish(r);
    }
  }
}

/* Read one chunk of a child's output straight into the outgoing queue as a frame. */
static void pump_output(struct req *r, int *fd, uint8_t type) {
  buf_reserve(&outq, HDR + CHUNK);
  ssize_t n = read(*fd, outq.p + outq.len + HDR, CHUNK);
  if (n > 0) {
    if (!r->orphan && connected) {
      put_header(outq.p + outq.len, type, r->id, (uint32_t)n);
      outq.len += HDR + (size_t)n;
    }
    return;
  }
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
    /* Only after exit: a background job holds the pipe but has nothing to say. */
    if (r->exited && now_ms() - r->exit_at >= DRAIN_GRACE_MS) close_fd(fd);
    return;
  }
  close_fd(fd);
}

static void pump_input(struct req *r) {
  while (buf_used(&r->inq) > 0) {
    ssize_t n = write(r->in_fd, r->inq.p + r->inq.off, buf_used(&r->inq));
    if (n > 0) {
      r->inq.off += (size_t)n;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    /* EPIPE: the command stopped reading; the rest of its input is dropped. */
    close_fd(&r->in_fd);
    buf_free(&r->inq);
    return;
  }
  buf_clear(&r->inq);
  if (r->in_close_pending) close_fd(&r->in_fd);
}

static void usage(void) {
  dprintf(2,
          "usage: falcon-agent [-v] [DEVICE]\n"
          "       falcon-agent [-v] --unix-listen PATH\n"
          "Runs commands for the Falcon host. Without DEVICE, serves on the virtio-serial port\n"
          "named " PORT_NAME " (found in /sys/class/virtio-ports).\n");
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "-v") == 0) verbose = 1;
    else if (strcmp(argv[i], "--unix-listen") == 0 && i + 1 < argc) unix_path = argv[++i];
    else if (strcmp(argv[i], "--version") == 0) {
      printf("falcon-agent %s (protocol %u)\n", AGENT_VERSION, PROTO_VERSION);
      return 0;
    } else if (argv[i][0] != '-' && !dev_path) dev_path = argv[i];
    else {
      usage();
      return 2;
    }
  }
  for (int i = 0; i < MAX_REQS; i++) reqs[i].out_fd = reqs[i].err_fd = reqs[i].in_fd = -1;

  signal(SIGPIPE, SIG_IGN);
  signal(SIGHUP, SIG_IGN);
  if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
    logmsg("pipe: %s", strerror(errno));
    return 1;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_sigchld;
  sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
  sigaction(SIGCHLD, &sa, NULL);
  sigaction(SIGIO, &sa, NULL); /* a host connected to the port: wake the loop the same way */

  open_channel();
  if (unix_path) logmsg("listening on %s", unix_path);

  enum { MAXFDS = 3 + 3 * MAX_REQS };
  struct pollfd fds[MAXFDS];
  struct {
    struct req *r;
    int which; /* 0 stdout, 1 stderr, 2 stdin */
  } owner[MAXFDS];

  for (;;) {
    if (!unix_path && chan_fd < 0) open_channel();
    int64_t now = now_ms();
    int timeout = -1;
#define WAKE_AT(t)                                             \
  do {                                                         \
    int64_t d_ = (t) - now;                                    \
    if (d_ < 0) d_ = 0;                                        \
    if (timeout < 0 || d_ < timeout) timeout = (int)d_;        \
  } while (0)

    int nf = 0;
    fds[nf].fd = sig_pipe[0];
    fds[nf].events = POLLIN;
    owner[nf].r = NULL;
    nf++;
    int chan_idx = -1, listen_idx = -1;
    if (unix_path && chan_fd < 0) {
      listen_idx = nf;
      fds[nf].fd = listen_fd;
      fds[nf].events = POLLIN;
      owner[nf].r = NULL;
      nf++;
    } else if (connected) {
      chan_idx = nf;
      fds[nf].fd = chan_fd;
      fds[nf].events = POLLIN | (buf_used(&outq) ? POLLOUT : 0);
      owner[nf].r = NULL;
      nf++;
      if (buf_used(&inbuf) > 0) WAKE_AT(last_rx_at + PARTIAL_FRAME_IDLE_MS);
    } else {
      /* A virtio port with no host reports POLLHUP forever: probe it on a timer instead. */
      WAKE_AT(next_probe_at);
    }
    int room = buf_used(&outq) < OUT_HIGH_WATER;
    for (int i = 0; i < MAX_REQS; i++) {
      struct req *r = &reqs[i];
      if (!r->used) continue;
      if (r->kill_at && !r->exited) WAKE_AT(r->kill_at);
      if (r->exited && (r->out_fd >= 0 || r->err_fd >= 0))
        WAKE_AT(r->exit_at + (room ? DRAIN_GRACE_MS : DRAIN_HARD_MS));
      int *fdp[3] = {&r->out_fd, &r->err_fd, &r->in_fd};
      for (int w = 0; w < 3; w++) {
        if (*fdp[w] < 0) continue;
        if (w < 2 && !room) continue;
        if (w == 2 && buf_used(&r->inq) == 0) continue;
        fds[nf].fd = *fdp[w];
        fds[nf].events = w < 2 ? POLLIN : POLLOUT;
        owner[nf].r = r;
        owner[nf].which = w;
        nf++;
      }
    }
#undef WAKE_AT

    int pr = poll(fds, (nfds_t)nf, timeout);
    if (pr < 0) {
      if (errno == EINTR) continue;
      logmsg("poll: %s", strerror(errno));
      sleep_ms(100);
      continue;
    }
    now = now_ms();

    if (fds[0].revents) {
      reap();
      if (!connected) next_probe_at = now; /* maybe SIGIO: look for the host now */
    }

    if (listen_idx >= 0 && (fds[listen_idx].revents & POLLIN)) {
      int c = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      if (c >= 0) {
        chan_fd = c;
        connected = 1;
        buf_clear(&inbuf);
        buf_clear(&outq);
        if (verbose) logmsg("client connected");
      }
    }

    if (chan_idx >= 0 && fds[chan_idx].revents) {
      if (fds[chan_idx].revents & (POLLIN | POLLHUP | POLLERR)) read_channel();
      if (connected && (fds[chan_idx].revents & POLLOUT)) write_channel();
    } else if (!connected && !unix_path && chan_fd >= 0 && now >= next_probe_at) {
      read_channel();
    }

    if (connected && buf_used(&inbuf) > 0 && now - last_rx_at >= PARTIAL_FRAME_IDLE_MS) {
      if (verbose) logmsg("dropping %zu bytes of an incomplete frame", buf_used(&inbuf));
      buf_clear(&inbuf);
    }

    for (int i = 1; i < nf; i++) {
      struct req *r = owner[i].r;
      if (!r || !r->used || !fds[i].revents) continue;
      if (owner[i].which == 0 && r->out_fd == fds[i].fd) pump_output(r, &r->out_fd, T_STDOUT);
      else if (owner[i].which == 1 && r->err_fd == fds[i].fd) pump_output(r, &r->err_fd, T_STDERR);
      else if (owner[i].which == 2 && r->in_fd == fds[i].fd) pump_input(r);
    }

    for (int i = 0; i < MAX_REQS; i++) {
      struct req *r = &reqs[i];
      if (!r->used) continue;
      if (r->kill_at && !r->exited && now >= r->kill_at) {
        kill(-r->pid, SIGKILL);
        r->kill_at = 0;
      }
      if (r->exited && (r->out_fd >= 0 || r->err_fd >= 0)) {
        int64_t age = now - r->exit_at;
        if (age >= DRAIN_HARD_MS) {
          close_fd(&r->out_fd);
          close_fd(&r->err_fd);
        } else if (age >= DRAIN_GRACE_MS && buf_used(&outq) < OUT_HIGH_WATER) {
          if (r->out_fd >= 0) pump_output(r, &r->out_fd, T_STDOUT);
          if (r->err_fd >= 0) pump_output(r, &r->err_fd, T_STDERR);
        }
      }
      maybe_finish(r);
    }

    if (connected && buf_used(&outq) > 0) write_channel();
  }
}
