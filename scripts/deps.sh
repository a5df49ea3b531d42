#!/usr/bin/env bash
# Installs the Debian 12 packages Postgate needs to build, run and test, skipping what is present.
# Usage: scripts/deps.sh [build|test|fuzz]   (test = build + the real SMTP/gRPC/Prometheus peers the
# tests use and clang for the fuzz targets; fuzz = build + clang and libFuzzer)
set -euo pipefail

build_pkgs=(
  cmake ninja-build g++ pkg-config
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev prometheus-cpp-dev libgtest-dev libgmock-dev libasio-dev libssl-dev
  librocksdb-dev libspdlog-dev libfmt-dev libcli11-dev libbenchmark-dev libcrypt-dev libopendkim-dev libpcre2-dev
  libcivetweb-dev
  openssl netcat-openbsd
)
test_pkgs=(
  python3 python3-grpcio python3-protobuf python3-aiosmtpd python3-dkim python3-nacl opendkim-tools whois
  swaks libnet-ssleay-perl libio-socket-ssl-perl curl prometheus tshark pflogsumm
  postfix python3-yaml dnsmasq-base yamllint unzip buildah podman runc debootstrap uidmap
  python3-milter rspamd opendkim chromium
)

fuzz_pkgs=(clang-14 libclang-rt-14-dev)

want=("${build_pkgs[@]}")
[ "${1:-build}" = test ] && want+=("${test_pkgs[@]}" "${fuzz_pkgs[@]}")
[ "${1:-build}" = fuzz ] && want+=("${fuzz_pkgs[@]}")

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

echo "postgate: installing ${missing[*]}" >&2
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer "no" without a prompt.
echo "wireshark-common wireshark-common/install-setuid boolean false" | $sudo debconf-set-selections
# postfix only for its smtp-sink (the remote in delivery tests): left unconfigured, it runs nothing.
if ! dpkg-query -W -f='${Status}' postfix 2>/dev/null | grep -q 'install ok installed'; then
  echo "postfix postfix/main_mailer_type select No configuration" | $sudo debconf-set-selections
fi
$sudo apt-get update -q
# --no-install-recommends: mail tools recommend default-mta (exim4), which would fight any Postfix here.
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
