#!/usr/bin/env bash
# What the tests need besides Rust, installed with apt-get when missing (Debian and
# Ubuntu): curl, openssl and h2load for the TLS tests (tests/it/tls), etcd and etcdctl for
# fleet mode (crates/etcd, crates/router-bin/tests/fleet, simhost's registration). Run by
# `make test` and `.ci/run`. Elsewhere it says what to install and lets the tests run: the
# ones that need a missing tool fail with the same advice.
set -euo pipefail

missing=()
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
command -v h2load >/dev/null || missing+=(nghttp2-client)
command -v etcd >/dev/null || missing+=(etcd-server)
command -v etcdctl >/dev/null || missing+=(etcd-client)
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null && sudo=(sudo)
if command -v apt-get >/dev/null && { [ "$(id -u)" -eq 0 ] || [ ${#sudo[@]} -gt 0 ]; }; then
    echo "test-deps: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
    # The etcd-server package may start a system etcd on 2379; the tests start their own on
    # free ports and need nothing else.
else
    echo "test-deps: please install ${missing[*]} (Debian package names); the tests that need them will fail until then" >&2
fi
