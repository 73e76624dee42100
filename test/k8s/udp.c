/*
 * A UDP echo for the test cluster's busybox image (Debian's busybox nc has no UDP):
 *   udp serve PORT                    echo every datagram back as "echo <data>", and print
 *                                     "from <ip>:<port> <data>" for each one (the pod's log)
 *   udp send HOST PORT MSG [WAIT_MS]  send MSG, print the reply and who sent it; exit 0 on a
 *                                     reply, 1 when none came (3 tries of WAIT_MS, 1000 default)
 * Built with gcc -static by the harness (test/k8s/images.ts).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int serve(int port) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_ANY)};
  if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) {
    perror("bind");
    return 2;
  }
  printf("listening on udp %d\n", port);
  fflush(stdout);
  for (;;) {
    char buf[2048], out[2100];
    struct sockaddr_in from;
    socklen_t fl = sizeof from;
    ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &fl);
    if (n < 0) continue;
    buf[n] = 0;
    printf("from %s:%d %s\n", inet_ntoa(from.sin_addr), ntohs(from.sin_port), buf);
    fflush(stdout);
    int m = snprintf(out, sizeof out, "echo %s", buf);
    sendto(s, out, m, 0, (struct sockaddr *)&from, fl);
  }
}

static int send_one(const char *host, int port, const char *msg, int wait_ms) {
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
  if (s < 0 || inet_pton(AF_INET, host, &a.sin_addr) != 1) {
    fprintf(stderr, "bad address %s\n", host);
    return 2;
  }
  for (int i = 0; i < 3; i++) {
    sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&a, sizeof a);
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, wait_ms) == 1) {
      char buf[2200];
      struct sockaddr_in from;
      socklen_t fl = sizeof from;
      ssize_t n = recvfrom(s, buf, sizeof buf - 1, 0, (struct sockaddr *)&from, &fl);
      if (n >= 0) {
        buf[n] = 0;
        printf("reply from %s:%d %s\n", inet_ntoa(from.sin_addr), ntohs(from.sin_port), buf);
        return 0;
      }
    }
  }
  fprintf(stderr, "no reply from %s:%d\n", host, port);
  return 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "serve")) return serve(atoi(argv[2]));
  if ((argc == 5 || argc == 6) && !strcmp(argv[1], "send")) return send_one(argv[2], atoi(argv[3]), argv[4], argc == 6 ? atoi(argv[5]) : 1000);
  fprintf(stderr, "usage: udp serve PORT | udp send HOST PORT MSG [WAIT_MS]\n");
  return 2;
}
