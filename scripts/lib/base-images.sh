#!/usr/bin/env bash
# Local base images for machines that cannot pull from a registry.
#
#   scripts/lib/base-images.sh ensure     # build what is missing, print the settings
#   scripts/lib/base-images.sh env        # print the settings only
#   source scripts/lib/base-images.sh && hanzo_base_images_ensure   # same, and export the settings
#
# Every image is keyed by the sha256 of its recipe (the text below plus its parent's key):
# it carries the label ai.hanzo.recipe=<hash> and is rebuilt only when the recipe changes.
# The Debian root file system is also kept as a tarball under
# ${HANZO_CACHE_DIR:-/var/cache/hanzo}/base/rootfs-<hash>.tar, so a fresh Docker data
# directory needs `docker import` only, not debootstrap.
#
# Tags never lie: Debian bookworm ships Python 3.11 and Node.js 18, so those are the tags.

HANZO_DEBIAN_MIRROR="${HANZO_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

# --- recipes (their text is what the cache keys hash) -------------------------------------

_hanzo_recipe_debian() {
	cat <<EOF
image: debian:bookworm-slim
debootstrap --variant=minbase bookworm ROOTFS ${HANZO_DEBIAN_MIRROR}
rm -rf ROOTFS/var/cache/apt/archives/*.deb ROOTFS/var/lib/apt/lists/* ROOTFS/tmp/*
printf 'deb ${HANZO_DEBIAN_MIRROR} bookworm main\ndeb ${HANZO_DEBIAN_MIRROR} bookworm-updates main\n' > ROOTFS/etc/apt/sources.list
tar --numeric-owner -C ROOTFS -c . | docker import --change 'CMD ["bash"]' --change 'ENV LANG=C.UTF-8' - debian:bookworm-slim
EOF
}

_hanzo_recipe_python() {
	cat <<'EOF'
FROM debian:bookworm-slim
ENV LANG=C.UTF-8 PIP_BREAK_SYSTEM_PACKAGES=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      python3 python3-pip python3-venv ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && ln -sf /usr/bin/python3 /usr/local/bin/python \
 && { [ -e /usr/bin/pip ] || ln -sf /usr/bin/pip3 /usr/local/bin/pip; } \
 && python3 --version | grep -q '^Python 3\.11\.'
CMD ["python3"]
EOF
}

_hanzo_recipe_node() {
	cat <<'EOF'
FROM debian:bookworm-slim
ENV LANG=C.UTF-8 NPM_CONFIG_UPDATE_NOTIFIER=false NPM_CONFIG_FUND=false
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      nodejs npm ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && node --version | grep -q '^v18\.'
CMD ["node"]
EOF
}

# Debian's nginx (1.22) laid out like the official image: serves /usr/share/nginx/html on :80.
_hanzo_recipe_nginx() {
	cat <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* \
 && mkdir -p /usr/share/nginx/html \
 && printf 'server {\n  listen 80 default_server;\n  root /usr/share/nginx/html;\n  index index.html;\n  location / { try_files $uri $uri/ =404; }\n}\n' > /etc/nginx/conf.d/default.conf \
 && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log \
 && nginx -v 2>&1 | grep -q 'nginx/1\.22\.'
EXPOSE 80
STOPSIGNAL SIGQUIT
CMD ["nginx", "-g", "daemon off;"]
EOF
}

# Debian's Go (1.19) and Rust (1.63), for the go and rust runtimes.
_hanzo_recipe_golang() {
	cat <<'EOF2'
FROM debian:bookworm-slim
ENV LANG=C.UTF-8 GOPATH=/go GOTOOLCHAIN=local PATH=/go/bin:$PATH
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      golang-go git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /go/bin \
 && go version | grep -q ' go1\.19'
CMD ["bash"]
EOF2
}

_hanzo_recipe_rust() {
	cat <<'EOF2'
FROM debian:bookworm-slim
ENV LANG=C.UTF-8 CARGO_HOME=/usr/local/cargo PATH=/usr/local/cargo/bin:$PATH
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      rustc cargo libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /usr/local/cargo/bin \
 && rustc --version | grep -q '^rustc 1\.63\.'
CMD ["bash"]
EOF2
}

# --- helpers ------------------------------------------------------------------------------

_hanzo_say() { printf 'base-images: %s\n' "$*" >&2; }
_hanzo_fail() {
	printf 'base-images: error: %s\n' "$*" >&2
	return 1
}
_hanzo_sha() { sha256sum | cut -c1-64; }

# _hanzo_image_has_recipe IMAGE HASH → true when IMAGE exists with that recipe label.
_hanzo_image_has_recipe() {
	local got
	got="$(docker image inspect --format '{{ index .Config.Labels "ai.hanzo.recipe" }}' "$1" 2>/dev/null)" || return 1
	[ "$got" = "$2" ]
}

_hanzo_ensure_debian() {
	local hash="$1" cache rootfs_tar tmp
	if _hanzo_image_has_recipe debian:bookworm-slim "$hash"; then
		_hanzo_say "debian:bookworm-slim is up to date (recipe ${hash:0:12})"
		return 0
	fi
	cache="${HANZO_CACHE_DIR:-/var/cache/hanzo}/base"
	rootfs_tar="$cache/rootfs-$hash.tar"
	mkdir -p "$cache" || _hanzo_fail "cannot create $cache; set HANZO_CACHE_DIR to a writable directory" || return 1
	if [ ! -s "$rootfs_tar" ]; then
		if ! command -v debootstrap >/dev/null 2>&1; then
			_hanzo_say "installing debootstrap with apt-get"
			DEBIAN_FRONTEND=noninteractive apt-get install -y debootstrap >/dev/null ||
				_hanzo_fail "could not install debootstrap; run 'apt-get update && apt-get install -y debootstrap' and retry" || return 1
		fi
		tmp="$(mktemp -d "${TMPDIR:-/tmp}/hanzo-rootfs.XXXXXX")" || return 1
		_hanzo_say "debootstrap bookworm (minbase) from $HANZO_DEBIAN_MIRROR into $tmp (about a minute)"
		if ! debootstrap --variant=minbase bookworm "$tmp/rootfs" "$HANZO_DEBIAN_MIRROR" >"$tmp/debootstrap.log" 2>&1; then
			tail -n 20 "$tmp/debootstrap.log" >&2
			rm -rf "$tmp"
			_hanzo_fail "debootstrap failed (log tail above); check that $HANZO_DEBIAN_MIRROR is reachable or set HANZO_DEBIAN_MIRROR" || return 1
		fi
		rm -rf "$tmp"/rootfs/var/cache/apt/archives/*.deb "$tmp"/rootfs/var/lib/apt/lists/* "$tmp"/rootfs/tmp/*
		printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' "$HANZO_DEBIAN_MIRROR" "$HANZO_DEBIAN_MIRROR" >"$tmp/rootfs/etc/apt/sources.list"
		_hanzo_say "saving the root file system to $rootfs_tar"
		if ! tar --numeric-owner -C "$tmp/rootfs" -cf "$rootfs_tar.partial" .; then
			rm -rf "$tmp" "$rootfs_tar.partial"
			_hanzo_fail "could not write $rootfs_tar; check free space in $cache" || return 1
		fi
		mv -f "$rootfs_tar.partial" "$rootfs_tar"
		rm -rf "$tmp"
	else
		_hanzo_say "reusing the cached root file system $rootfs_tar"
	fi
	_hanzo_say "docker import debian:bookworm-slim"
	docker import \
		--change 'CMD ["bash"]' \
		--change 'ENV LANG=C.UTF-8' \
		--change "LABEL ai.hanzo.recipe=$hash" \
		"$rootfs_tar" debian:bookworm-slim >/dev/null ||
		_hanzo_fail "docker import of $rootfs_tar failed; check that the Docker Engine is running ('docker info')" || return 1
}

# _hanzo_ensure_built IMAGE HASH RECIPE_FUNCTION
_hanzo_ensure_built() {
	local image="$1" hash="$2" recipe="$3" log
	if _hanzo_image_has_recipe "$image" "$hash"; then
		_hanzo_say "$image is up to date (recipe ${hash:0:12})"
		return 0
	fi
	_hanzo_say "building $image (apt-get inside the image; a minute or two)"
	log="$(mktemp "${TMPDIR:-/tmp}/hanzo-base-build.XXXXXX")" || return 1
	if ! "$recipe" | docker build --pull=false --label "ai.hanzo.recipe=$hash" -t "$image" - >"$log" 2>&1; then
		tail -n 20 "$log" >&2
		rm -f "$log"
		_hanzo_fail "building $image failed (log tail above); check that containers reach $HANZO_DEBIAN_MIRROR over HTTP" || return 1
	fi
	rm -f "$log"
}

# Hashes: each recipe's text, chained to its parent's hash.
_hanzo_hashes() {
	HANZO_RECIPE_DEBIAN="$(_hanzo_recipe_debian | _hanzo_sha)"
	HANZO_RECIPE_PYTHON="$( { echo "$HANZO_RECIPE_DEBIAN"; _hanzo_recipe_python; } | _hanzo_sha)"
	HANZO_RECIPE_NODE="$( { echo "$HANZO_RECIPE_DEBIAN"; _hanzo_recipe_node; } | _hanzo_sha)"
	HANZO_RECIPE_NGINX="$( { echo "$HANZO_RECIPE_DEBIAN"; _hanzo_recipe_nginx; } | _hanzo_sha)"
	HANZO_RECIPE_GOLANG="$( { echo "$HANZO_RECIPE_DEBIAN"; _hanzo_recipe_golang; } | _hanzo_sha)"
	HANZO_RECIPE_RUST="$( { echo "$HANZO_RECIPE_DEBIAN"; _hanzo_recipe_rust; } | _hanzo_sha)"
}

# The platform's base-image settings for these local images (runtime key → image).
hanzo_base_images_env() {
	cat <<'EOF'
HANZO_BASE_IMAGE_NODE_18=node:18-bookworm-slim
HANZO_BASE_IMAGE_PYTHON_3_11=python:3.11-slim-bookworm
HANZO_BASE_IMAGE_GO_1_19=golang:1.19-bookworm
HANZO_BASE_IMAGE_RUST_1_63=rust:1.63-bookworm
HANZO_BASE_IMAGE_STATIC=nginx:1.22-bookworm
HANZO_BASE_IMAGE_DISTROLESS=debian:bookworm-slim
EOF
}

_hanzo_base_images_ensure() {
	command -v docker >/dev/null 2>&1 || _hanzo_fail "docker is not installed; install docker.io and start dockerd" || return 1
	docker info >/dev/null 2>&1 || _hanzo_fail "the Docker Engine does not answer; start dockerd and retry" || return 1
	_hanzo_hashes
	_hanzo_ensure_debian "$HANZO_RECIPE_DEBIAN" || return 1
	_hanzo_ensure_built python:3.11-slim-bookworm "$HANZO_RECIPE_PYTHON" _hanzo_recipe_python || return 1
	_hanzo_ensure_built node:18-bookworm-slim "$HANZO_RECIPE_NODE" _hanzo_recipe_node || return 1
	_hanzo_ensure_built nginx:1.22-bookworm "$HANZO_RECIPE_NGINX" _hanzo_recipe_nginx || return 1
	_hanzo_ensure_built golang:1.19-bookworm "$HANZO_RECIPE_GOLANG" _hanzo_recipe_golang || return 1
	_hanzo_ensure_built rust:1.63-bookworm "$HANZO_RECIPE_RUST" _hanzo_recipe_rust || return 1
	_hanzo_say "all base images are ready; platform settings:"
	hanzo_base_images_env
}

# Sourced entry point: builds what is missing and exports the settings into the caller.
hanzo_base_images_ensure() {
	(set -uo pipefail && _hanzo_base_images_ensure) || return 1
	local line
	while IFS= read -r line; do
		export "${line?}"
	done < <(hanzo_base_images_env)
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
	set -uo pipefail
	case "${1:-ensure}" in
	ensure) _hanzo_base_images_ensure || exit 1 ;;
	env) hanzo_base_images_env ;;
	*)
		echo "usage: $0 [ensure|env]" >&2
		exit 2
		;;
	esac
fi
