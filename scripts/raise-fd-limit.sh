# scripts/raise-fd-limit.sh — sourced: raises this shell's open-file limit for the services it
# starts. The hard limit goes up to 65536 where allowed (root), the soft limit to the hard one.
want=65536
hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
  ulimit -Hn "$want" 2>/dev/null || true
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true
unset want hard
