#!/bin/sh
# Runs the exec agent; busybox init respawns this script, the pause stops a crash loop.
/sbin/falcon-agent >>/run/falcon-agent.log 2>&1
rc=$?
echo "falcon-agent exited with status $rc (log: /run/falcon-agent.log); restarting" >/dev/console
sleep 1
