#!/bin/bash
# Container health check for the IMS image (Docker HEALTHCHECK and the ECS task definition).
# The runtime image has no curl: bash's /dev/tcp sends one HTTP/1.1 request to GET /healthz on
# the port of IMS_LISTEN and succeeds only on a 200 status line. No secret is involved.
set -u
port="${IMS_LISTEN##*:}"
port="${port:-8080}"
exec 3<>"/dev/tcp/127.0.0.1/${port}" || exit 1
printf 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
IFS= read -r -t 4 status <&3 || exit 1
case "$status" in
  "HTTP/1."?" 200 "*) exit 0 ;;
  *) exit 1 ;;
esac
