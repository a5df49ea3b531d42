#!/usr/bin/env bash
# Makes a self-signed certificate and key for STARTTLS, like Debian's ssl-cert "snakeoil" pair,
# unless they exist. Usage: scripts/make-snakeoil-cert.sh DIR [HOSTNAME]
set -euo pipefail
dir=$1
host=${2:-mail169.com}
[ -s "$dir/snakeoil.pem" ] && [ -s "$dir/snakeoil.key" ] && exit 0
mkdir -p "$dir"
umask 077
openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$host" \
  -addext "subjectAltName=DNS:$host,DNS:localhost,IP:127.0.0.1" \
  -keyout "$dir/snakeoil.key" -out "$dir/snakeoil.pem" 2>/dev/null
echo "postgate: made a self-signed certificate for $host in $dir" >&2
