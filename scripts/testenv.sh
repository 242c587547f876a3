#!/usr/bin/env bash
# Real test environment for cicd-agents integration tests.
#
#   scripts/testenv.sh up        install what is missing, start everything, print `export` lines
#   scripts/testenv.sh down      stop everything
#   scripts/testenv.sh status    show what runs
#   scripts/testenv.sh env       print the `export` lines of a running environment
#   scripts/testenv.sh new-repo NAME   create a bare git repository (idempotent), print its URL
#   scripts/testenv.sh seed-demo  create the demo repositories (also done by `up`)
#   scripts/testenv.sh seed-images  seed the base images into the registry (also done by `up`)
#
# Usage: eval "$(scripts/testenv.sh up)"
#
# Everything listens on loopback and keeps its state under $CICD_TESTENV_DIR
# (default /var/lib/cicd-agents-testenv):
#   - dockerd (containerd image store, embedded BuildKit) on unix://$STATE/docker.sock
#   - docker-registry (distribution 2.8) on 127.0.0.1:$CICD_TESTENV_REGISTRY_PORT (5055)
#   - a smart-HTTP git server with token auth on 127.0.0.1:$CICD_TESTENV_GIT_PORT (8418)
#   - a busybox base image $REGISTRY/base/busybox:1
#   - a base image with git and CA certificates $REGISTRY/base/git:1 (busybox plus the host's
#     git and C library, made offline): the stand-in for debian:trixie-slim when tests build
#     images/tool/Dockerfile
#   - demo repositories for examples/pipeline.yaml: demo-app.git (Dockerfile, app) and
#     demo-chart.git (charts/demo with Chart.yaml and values.yaml)
# Progress goes to stderr; only the export lines go to stdout.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
STATE="${CICD_TESTENV_DIR:-/var/lib/cicd-agents-testenv}"
REGISTRY_PORT="${CICD_TESTENV_REGISTRY_PORT:-5055}"
GIT_PORT="${CICD_TESTENV_GIT_PORT:-8418}"

DOCKER_SOCK="$STATE/docker.sock"
DOCKER_PIDFILE="$STATE/dockerd.pid"
REGISTRY_PIDFILE="$STATE/registry.pid"
AUTH_REGISTRY_PORT="${CICD_TESTENV_AUTH_REGISTRY_PORT:-5057}"
AUTH_REGISTRY_PIDFILE="$STATE/auth-registry.pid"
AUTH_USER=ci-user
AUTH_PASSWORD=""
GIT_PIDFILE="$STATE/git-server.pid"
GIT_ROOT="$STATE/git"
GIT_TOKEN_FILE="$STATE/git-token"
ENV_FILE="$STATE/env"
REGISTRY="127.0.0.1:$REGISTRY_PORT"
BASE_IMAGE="$REGISTRY/base/busybox:1"
GIT_BASE_IMAGE="$REGISTRY/base/git:1"

TRIXIE_SOURCES=/etc/apt/sources.list.d/trixie.sources
TRIXIE_PIN=/etc/apt/preferences.d/trixie-low

log() { printf 'testenv: %s\n' "$*" >&2; }
die() { printf 'testenv: error: %s\n' "$*" >&2; exit 1; }

pick_python() {
    if [ -x /usr/bin/python3 ]; then
        echo /usr/bin/python3
    elif command -v python3 >/dev/null 2>&1; then
        command -v python3
    else
        return 1
    fi
}

PYTHON="$(pick_python || true)"

docker_cli() { DOCKER_HOST="unix://$DOCKER_SOCK" docker "$@"; }

# ---------------------------------------------------------------- processes

# pid_alive PIDFILE NAME: the pidfile names a live process whose command line contains NAME.
pid_alive() {
    local pidfile="$1" name="$2" pid
    [ -s "$pidfile" ] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    [ -n "$pid" ] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$name"
}

pid_of() { tr -dc '0-9' <"$1"; }

# stop_pid PIDFILE NAME TIMEOUT_SECONDS
stop_pid() {
    local pidfile="$1" name="$2" timeout="$3" pid i
    if ! pid_alive "$pidfile" "$name"; then
        rm -f "$pidfile"
        return 0
    fi
    pid="$(pid_of "$pidfile")"
    log "stopping $name (pid $pid)"
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "$name did not stop in ${timeout}s, killing it"
        kill -KILL "$pid" 2>/dev/null || true
        sleep 0.2
    fi
    rm -f "$pidfile"
}

# http_status URL [ACCEPT] [USER:PASSWORD] -> prints the HTTP status code (000 when unreachable)
http_status() {
    "$PYTHON" - "$@" <<'EOF'
import base64, sys, urllib.request, urllib.error
url = sys.argv[1]
req = urllib.request.Request(url)
if len(sys.argv) > 2 and sys.argv[2]:
    req.add_header("Accept", sys.argv[2])
if len(sys.argv) > 3 and sys.argv[3]:
    req.add_header("Authorization", "Basic " + base64.b64encode(sys.argv[3].encode()).decode())
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        print(r.status)
except urllib.error.HTTPError as e:
    print(e.code)
except Exception:
    print("000")
EOF
}

port_in_use() {
    "$PYTHON" - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.connect(("127.0.0.1", int(sys.argv[1])))
    print("yes")
except OSError:
    print("no")
finally:
    s.close()
EOF
}

# ---------------------------------------------------------------- packages

pkg_version() {
    # prints the installed version of a package, nothing when not installed
    local st
    st="$(dpkg-query -W -f='${Status}|${Version}' "$1" 2>/dev/null || true)"
    case "$st" in
        "install ok installed|"*) echo "${st#*|}" ;;
        *) ;;
    esac
}

write_if_different() {
    # write_if_different FILE CONTENT
    local file="$1" content="$2"
    if [ ! -f "$file" ] || [ "$(cat "$file")" != "$content" ]; then
        log "writing $file"
        printf '%s\n' "$content" >"$file"
    fi
}

ensure_packages() {
    write_if_different "$TRIXIE_SOURCES" "Types: deb
URIs: http://deb.debian.org/debian
Suites: trixie
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg"
    write_if_different "$TRIXIE_PIN" "Package: *
Pin: release n=trixie
Pin-Priority: 100"

    local trixie_pkgs=() plain_pkgs=() v
    v="$(pkg_version docker.io)"
    if [ -z "$v" ] || dpkg --compare-versions "$v" lt 26; then trixie_pkgs+=(docker.io); fi
    v="$(pkg_version containerd)"
    if [ -z "$v" ] || dpkg --compare-versions "$v" lt 1.7; then trixie_pkgs+=(containerd); fi
    v="$(pkg_version docker-cli)"
    if [ -z "$v" ] || dpkg --compare-versions "$v" lt 26; then trixie_pkgs+=(docker-cli); fi
    [ -n "$(pkg_version docker-buildx)" ] || trixie_pkgs+=(docker-buildx)
    [ -n "$(pkg_version docker-registry)" ] || plain_pkgs+=(docker-registry)
    [ -n "$(pkg_version busybox-static)" ] || plain_pkgs+=(busybox-static)
    command -v htpasswd >/dev/null 2>&1 || plain_pkgs+=(apache2-utils)
    command -v ssh-agent >/dev/null 2>&1 || plain_pkgs+=(openssh-client)
    command -v git >/dev/null 2>&1 || plain_pkgs+=(git)
    [ -x /usr/bin/python3 ] || command -v python3 >/dev/null 2>&1 || plain_pkgs+=(python3)

    if [ ${#trixie_pkgs[@]} -eq 0 ] && [ ${#plain_pkgs[@]} -eq 0 ]; then
        return 0
    fi
    log "installing: ${trixie_pkgs[*]:+${trixie_pkgs[*]} (from trixie) }${plain_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Keep package scripts from starting a system dockerd / registry on default ports.
    local policy_added=0
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
        policy_added=1
    fi
    apt-get update -q >&2
    if [ ${#trixie_pkgs[@]} -gt 0 ]; then
        # `pkg/trixie` selects trixie's version of just these packages; their dependencies
        # (runc, tini, iptables, libc6, ...) keep bookworm's versions thanks to the low pin.
        # Do NOT use `-t trixie` here: it makes every trixie package the candidate, which pulls
        # trixie's runc/tini (libc6 >= 2.38) and with them libc6, systemd, perl and python 3.13.
        # No recommends either (criu, needrestart, apparmor would do the same).
        local sel=() p sim
        for p in "${trixie_pkgs[@]}"; do sel+=("$p/trixie"); done
        sim="$(apt-get -s install -y --no-install-recommends "${sel[@]}" 2>&1)" ||
            { printf '%s\n' "$sim" >&2; die "apt-get cannot install ${sel[*]}"; }
        if printf '%s\n' "$sim" | grep -qE '^Inst (libc6|libc-bin|systemd|libsystemd0|perl-base|python3|libssl3) '; then
            printf '%s\n' "$sim" | grep -E '^(Inst|Remv) ' >&2
            die "installing ${sel[*]} would upgrade core system packages; refusing (see above)"
        fi
        apt-get install -y -q --no-install-recommends "${sel[@]}" >&2
    fi
    if [ ${#plain_pkgs[@]} -gt 0 ]; then
        apt-get install -y -q --no-install-recommends "${plain_pkgs[@]}" >&2
    fi
    if [ "$policy_added" = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
}

# ---------------------------------------------------------------- dockerd

docker_answers() { docker_cli version --format '{{.Server.Version}}' >/dev/null 2>&1; }

start_dockerd() {
    mkdir -p "$STATE/docker-data" "$STATE/x"
    local config="$STATE/daemon.json"
    write_if_different "$config" '{"features": {"containerd-snapshotter": true}, "storage-driver": "native"}'
    if pid_alive "$DOCKER_PIDFILE" dockerd; then
        case "$(readlink "/proc/$(pid_of "$DOCKER_PIDFILE")/cwd" 2>/dev/null)" in
        *" (deleted)")
            # An older script started it from a directory since deleted: git contexts fail there.
            log "dockerd runs in a deleted directory; restarting it from /"
            stop_pid "$DOCKER_PIDFILE" dockerd 60
            rm -f "$DOCKER_SOCK"
            ;;
        esac
    fi
    if pid_alive "$DOCKER_PIDFILE" dockerd; then
        if docker_answers; then
            log "dockerd already running (pid $(pid_of "$DOCKER_PIDFILE"))"
            return 0
        fi
        log "dockerd (pid $(pid_of "$DOCKER_PIDFILE")) is not answering yet, waiting"
    else
        rm -f "$DOCKER_PIDFILE" "$DOCKER_SOCK"
        log "starting dockerd (log $STATE/dockerd.log)"
        # exec-root holds containerd's sockets: keep its path short (108-byte sun_path limit).
        # Started from /: dockerd runs git (git build contexts) in its own working directory,
        # and a caller's directory (a test's checkout) may be deleted while dockerd lives on.
        (cd / && exec setsid dockerd \
            --data-root "$STATE/docker-data" \
            --exec-root "$STATE/x" \
            --pidfile "$DOCKER_PIDFILE" \
            --config-file "$config" \
            -H "unix://$DOCKER_SOCK" \
            --iptables=false --ip6tables=false --bridge=none --ip-masq=false \
            </dev/null >>"$STATE/dockerd.log" 2>&1 9>&-) &
    fi
    local i
    for ((i = 0; i < 600; i++)); do
        if docker_answers; then
            log "dockerd ready ($(docker_cli version --format 'server {{.Server.Version}}' 2>/dev/null))"
            return 0
        fi
        sleep 0.1
    done
    tail -n 40 "$STATE/dockerd.log" >&2 || true
    die "dockerd did not answer on $DOCKER_SOCK within 60s"
}

# ---------------------------------------------------------------- registry

# run_registry NAME PORT PIDFILE READY_STATUS [EXTRA_CONFIG]: one
# docker-registry instance under $STATE/NAME, (re)started when its config changed.
run_registry() {
    local name="$1" port="$2" pidfile="$3" ready="$4" extra="${5:-}"
    local dir="$STATE/$name" addr="127.0.0.1:$2"
    mkdir -p "$dir/data"
    local config="$dir/config.yml" old="" restart=0
    [ -f "$config" ] && old="$(cat "$config")"
    write_if_different "$config" "version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: $addr$extra"
    [ "$old" = "$(cat "$config")" ] || restart=1
    if pid_alive "$pidfile" docker-registry; then
        if [ "$restart" = 0 ] && [ "$(http_status "http://$addr/v2/")" = "$ready" ]; then
            log "$name already running on $addr (pid $(pid_of "$pidfile"))"
            return 0
        fi
        stop_pid "$pidfile" docker-registry 10
    fi
    [ "$(port_in_use "$port")" = no ] || die "port $port ($name) is taken by another process"
    log "starting $name on $addr (log $STATE/$name.log)"
    (cd / && exec setsid sh -c 'echo $$ >"$1"; exec docker-registry serve "$2"' sh "$pidfile" "$config" \
        </dev/null >>"$STATE/$name.log" 2>&1) &
    local i
    for ((i = 0; i < 300; i++)); do
        if [ "$(http_status "http://$addr/v2/")" = "$ready" ]; then
            log "$name ready"
            return 0
        fi
        if [ "$i" -gt 5 ] && ! pid_alive "$pidfile" docker-registry; then break; fi
        sleep 0.1
    done
    tail -n 20 "$STATE/$name.log" >&2 || true
    die "$name did not come up on $addr"
}

start_registry() {
    run_registry registry "$REGISTRY_PORT" "$REGISTRY_PIDFILE" 200
}

# A second registry that requires a login (htpasswd), for registry
# credentials tests: user and password are written to the env file.
start_auth_registry() {
    local dir="$STATE/auth-registry"
    mkdir -p "$dir"
    if [ ! -s "$dir/password" ]; then
        head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$dir/password"
    fi
    AUTH_PASSWORD="$(cat "$dir/password")"
    if [ ! -s "$dir/htpasswd" ] || ! htpasswd -vb "$dir/htpasswd" "$AUTH_USER" "$AUTH_PASSWORD" >/dev/null 2>&1; then
        htpasswd -Bbn "$AUTH_USER" "$AUTH_PASSWORD" >"$dir/htpasswd"
    fi
    run_registry auth-registry "$AUTH_REGISTRY_PORT" "$AUTH_REGISTRY_PIDFILE" 401 "
auth:
  htpasswd:
    realm: cicd-agents-test
    path: $dir/htpasswd"
}

# ---------------------------------------------------------------- git server

ensure_token() {
    if [ ! -s "$GIT_TOKEN_FILE" ]; then
        (umask 077 && od -An -tx1 -N20 /dev/urandom | tr -d ' \n' >"$GIT_TOKEN_FILE")
        log "generated git token in $GIT_TOKEN_FILE"
    fi
    GIT_TOKEN="$(cat "$GIT_TOKEN_FILE")"
}

start_git_server() {
    mkdir -p "$GIT_ROOT"
    ensure_token
    local want="$SCRIPT_DIR/git-http-server.py --root $GIT_ROOT --port $GIT_PORT"
    if pid_alive "$GIT_PIDFILE" git-http-server.py; then
        local cmd
        cmd="$(tr '\0' ' ' <"/proc/$(pid_of "$GIT_PIDFILE")/cmdline")"
        if [[ "$cmd" == *"--port $GIT_PORT "* ]] && [ ! "$SCRIPT_DIR/git-http-server.py" -nt "$GIT_PIDFILE" ] &&
            [ "$(http_status "http://127.0.0.1:$GIT_PORT/" "" "x:$GIT_TOKEN")" != 000 ]; then
            log "git server already running on 127.0.0.1:$GIT_PORT (pid $(pid_of "$GIT_PIDFILE"))"
            return 0
        fi
        stop_pid "$GIT_PIDFILE" git-http-server.py 10
    fi
    [ "$(port_in_use "$GIT_PORT")" = no ] ||
        die "port $GIT_PORT is taken by another process; set CICD_TESTENV_GIT_PORT"
    log "starting git server on 127.0.0.1:$GIT_PORT (log $STATE/git-server.log)"
    # shellcheck disable=SC2086
    (cd / && exec setsid sh -c 'f="$1"; shift; echo $$ >"$f"; exec "$@"' sh "$GIT_PIDFILE" \
        "$PYTHON" $want --token-file "$GIT_TOKEN_FILE" \
        </dev/null >>"$STATE/git-server.log" 2>&1) &
    local i
    for ((i = 0; i < 100; i++)); do
        if [ "$(http_status "http://127.0.0.1:$GIT_PORT/" "" "x:$GIT_TOKEN")" != 000 ]; then
            log "git server ready"
            return 0
        fi
        sleep 0.1
    done
    tail -n 20 "$STATE/git-server.log" >&2 || true
    die "git server did not come up on 127.0.0.1:$GIT_PORT"
}

new_repo() {
    local name="$1"
    case "$name" in
        "" | /* | *..*) die "bad repository name '$name'" ;;
    esac
    case "$name" in *.git) ;; *) name="$name.git" ;; esac
    local dir="$GIT_ROOT/$name"
    mkdir -p "$GIT_ROOT"
    if [ ! -f "$dir/HEAD" ]; then
        git init -q --bare --initial-branch=main "$dir" >&2
        log "created $dir"
    fi
    git -C "$dir" config http.receivepack true
    echo "http://127.0.0.1:$GIT_PORT/$name"
}

# ---------------------------------------------------------------- base image

manifest_accept="application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json"

# in_registry REPO TAG: the registry serves that manifest
in_registry() {
    [ "$(http_status "http://$REGISTRY/v2/$1/manifests/$2" "$manifest_accept")" = 200 ]
}

# busybox_rootfs ROOT: a minimal root file system with the host's static busybox and its
# applets in /bin, root and nobody users, a world-writable /tmp.
busybox_rootfs() {
    local root="$1" busybox=/bin/busybox applet
    [ -x "$busybox" ] || busybox=/usr/bin/busybox
    mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp" "$root/proc" "$root/sys" "$root/dev" \
        "$root/usr/bin" "$root/sbin" "$root/usr/sbin" "$root/var" "$root/home"
    chmod 1777 "$root/tmp"
    cp "$busybox" "$root/bin/busybox"
    for applet in $("$busybox" --list); do
        [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

# import_and_push ROOT IMAGE REPO TAG: the directory as a one-layer image in the registry
import_and_push() {
    local root="$1" image="$2"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -c . |
        docker_cli import \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
            --change 'CMD ["sh"]' \
            - "$image" >/dev/null
    docker_cli push -q "$image" >&2
    in_registry "$3" "$4" || die "pushed $image but the registry does not serve it"
}

seed_base_image() {
    if in_registry base/busybox 1; then
        log "base image $BASE_IMAGE already in the registry"
        return 0
    fi
    log "seeding $BASE_IMAGE"
    local root
    root="$(mktemp -d "$STATE/base-rootfs.XXXXXX")"
    busybox_rootfs "$root"
    import_and_push "$root" "$BASE_IMAGE" base/busybox 1
    rm -rf "$root"
}

# A base image with git, its helpers (git-remote-http), CA certificates and the C library,
# all copied from this host (no network): what `apt-get install git ca-certificates` gives on
# Debian, for building images/tool/Dockerfile offline. Programs built on this host (the
# cicd-agents binary) run in it, since it carries the host's libc, libm and libgcc_s.
seed_git_base_image() {
    if in_registry base/git 1; then
        log "base image $GIT_BASE_IMAGE already in the registry"
        return 0
    fi
    log "seeding $GIT_BASE_IMAGE"
    local git_bin git_core root lib
    git_bin="$(command -v git)" || die "git is not installed"
    git_core="$(git --exec-path)"
    [ -x "$git_core/git-remote-http" ] || die "$git_core/git-remote-http missing (git without HTTP support?)"
    [ -s /etc/ssl/certs/ca-certificates.crt ] || die "/etc/ssl/certs/ca-certificates.crt missing (install ca-certificates)"
    root="$(mktemp -d "$STATE/git-rootfs.XXXXXX")"
    busybox_rootfs "$root"
    mkdir -p "$root/usr/bin" "$root${git_core%/*}" "$root/etc/ssl/certs"
    cp "$git_bin" "$root/usr/bin/git"
    cp -a "$git_core" "$root$git_core"
    if [ -d /usr/share/git-core/templates ]; then
        mkdir -p "$root/usr/share/git-core"
        cp -a /usr/share/git-core/templates "$root/usr/share/git-core/"
    fi
    cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
    # Every shared library the git programs load (ldd lists the whole closure, the dynamic
    # loader included), plus the rest of what Debian's libc6 and libgcc-s1 packages put into
    # every image and Rust programs link (libm, libgcc_s, ...); copied under the names the
    # loader asks for.
    local libdir
    libdir="$(ldd "$git_bin" | awk '$1 == "libc.so.6" {print $3}')"
    libdir="${libdir%/*}"
    [ -n "$libdir" ] || die "cannot tell where git's C library lives (ldd $git_bin)"
    {
        find "$git_bin" "$git_core" -type f -perm -u+x -exec sh -c \
            'for f; do if head -c 4 "$f" | grep -q ELF; then ldd "$f" || true; fi; done' sh {} + 2>/dev/null |
            awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}'
        for lib in libc.so.6 libm.so.6 libgcc_s.so.1 libpthread.so.0 libdl.so.2 librt.so.1 \
            libutil.so.1 libresolv.so.2; do
            [ ! -e "$libdir/$lib" ] || echo "$libdir/$lib"
        done
    } | sort -u | while read -r lib; do
        [ -n "$lib" ] || continue
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    import_and_push "$root" "$GIT_BASE_IMAGE" base/git 1
    rm -rf "$root"
}

seed_images() {
    seed_base_image
    seed_git_base_image
}

# ---------------------------------------------------------------- demo repositories

demo_git() {
    GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null GIT_TERMINAL_PROMPT=0 \
        GIT_AUTHOR_NAME="cicd-agents testenv" GIT_AUTHOR_EMAIL="testenv@cicd-agents.invalid" \
        GIT_COMMITTER_NAME="cicd-agents testenv" GIT_COMMITTER_EMAIL="testenv@cicd-agents.invalid" \
        git "$@"
}

write_demo_app() {
    local dir="$1"
    cat >"$dir/Dockerfile" <<EOF
# The cicd-agents demo app. BASE_IMAGE is passed by examples/pipeline.yaml.
ARG BASE_IMAGE=$BASE_IMAGE
FROM \$BASE_IMAGE
RUN mkdir -p /app && echo "built by cicd-agents from demo-app.git" >/app/build-info.txt
COPY app.sh /app/app.sh
CMD ["/bin/sh", "/app/app.sh"]
EOF
    cat >"$dir/app.sh" <<'EOF'
#!/bin/sh
echo "hello from the cicd-agents demo app"
cat /app/build-info.txt
EOF
    cat >"$dir/README.md" <<'EOF'
# demo-app

Example application for the cicd-agents demo pipeline (`examples/pipeline.yaml`).
EOF
}

write_demo_chart() {
    local dir="$1"
    mkdir -p "$dir/charts/demo/templates"
    cat >"$dir/charts/demo/Chart.yaml" <<'EOF'
apiVersion: v2
name: demo
description: Example chart deployed by the cicd-agents demo pipeline
type: application
version: 0.1.0
appVersion: "0.1.0"
EOF
    cat >"$dir/charts/demo/values.yaml" <<EOF
# Default values for demo.
# This is a YAML-formatted file; the pipeline edits only the values it owns.

replicaCount: 1

image:
  # Written by the cicd-agents pipeline (examples/pipeline.yaml): repository and tag.
  repository: $REGISTRY/demo/app
  tag: "0.0.0"   # set by CI
  pullPolicy: IfNotPresent

service:
  type: ClusterIP
  port: 8080

resources: {}
EOF
    cat >"$dir/charts/demo/templates/deployment.yaml" <<'EOF'
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-demo
spec:
  replicas: {{ .Values.replicaCount }}
  selector:
    matchLabels:
      app: {{ .Release.Name }}-demo
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}-demo
    spec:
      containers:
        - name: demo
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
          imagePullPolicy: {{ .Values.image.pullPolicy }}
EOF
}

# seed_repo NAME WRITER: creates NAME.git on the git server and, when it has no main branch
# yet, commits the files WRITER puts into a fresh directory. Idempotent: an existing main
# branch (with whatever later runs pushed) is left alone.
seed_repo() {
    local name="$1" writer="$2" bare work
    new_repo "$name" >/dev/null
    bare="$GIT_ROOT/$name.git"
    if demo_git -C "$bare" rev-parse -q --verify refs/heads/main >/dev/null 2>&1; then
        log "$name.git already seeded"
        return 0
    fi
    work="$(mktemp -d "$STATE/seed.XXXXXX")"
    "$writer" "$work"
    demo_git -C "$work" init -q --initial-branch=main
    demo_git -C "$work" add -A
    demo_git -C "$work" commit -q -m "Initial $name"
    demo_git -C "$work" push -q "$bare" main:refs/heads/main
    rm -rf "$work"
    log "seeded $name.git"
}

# The demo repositories for examples/pipeline.yaml (scripts/demo.sh).
seed_demo() {
    seed_repo demo-app write_demo_app
    seed_repo demo-chart write_demo_chart
}

# ---------------------------------------------------------------- env

print_env() {
    cat <<EOF
export CICD_TESTENV_DIR=$STATE
export CICD_TESTENV_DOCKER_SOCK=$DOCKER_SOCK
export CICD_TESTENV_DOCKER_ADDR=docker://unix://$DOCKER_SOCK
export CICD_TESTENV_REGISTRY=$REGISTRY
export CICD_TESTENV_BASE_IMAGE=$BASE_IMAGE
export CICD_TESTENV_GIT_BASE_IMAGE=$GIT_BASE_IMAGE
export CICD_TESTENV_GIT_URL=http://127.0.0.1:$GIT_PORT
export CICD_TESTENV_GIT_ROOT=$GIT_ROOT
export CICD_TESTENV_GIT_TOKEN=$GIT_TOKEN
export CICD_TESTENV_AUTH_REGISTRY=127.0.0.1:$AUTH_REGISTRY_PORT
export CICD_TESTENV_AUTH_USER=$AUTH_USER
export CICD_TESTENV_AUTH_PASSWORD=$AUTH_PASSWORD
EOF
}

check_state_path() {
    case "$STATE" in
        /*) ;;
        *) die "CICD_TESTENV_DIR must be an absolute path (got '$STATE')" ;;
    esac
    case "$STATE" in
        *[!A-Za-z0-9_./-]*) die "CICD_TESTENV_DIR may only contain [A-Za-z0-9_./-] (got '$STATE')" ;;
    esac
    [ "${#STATE}" -le 60 ] || die "CICD_TESTENV_DIR is too long for unix socket paths (max 60 chars)"
}

cmd_up() {
    [ "$(id -u)" = 0 ] || die "'up' must run as root"
    check_state_path
    local t0=$SECONDS
    ensure_packages
    PYTHON="$(pick_python)" || die "python3 not found"
    mkdir -p "$STATE"
    chmod 755 "$STATE"
    start_dockerd
    start_registry
    start_auth_registry
    start_git_server
    seed_images
    seed_demo
    print_env >"$ENV_FILE.tmp"
    mv "$ENV_FILE.tmp" "$ENV_FILE"
    log "up in $((SECONDS - t0))s; environment in $ENV_FILE"
    print_env
}

cmd_down() {
    stop_pid "$GIT_PIDFILE" git-http-server.py 10
    stop_pid "$REGISTRY_PIDFILE" docker-registry 10
    stop_pid "$AUTH_REGISTRY_PIDFILE" docker-registry 10
    stop_pid "$DOCKER_PIDFILE" dockerd 60
    rm -f "$DOCKER_SOCK"
    log "down"
}

# restart-daemon: stop dockerd and start it again with the same configuration and state,
# then wait until it answers. Other processes' connections to it are cut (fault tests).
cmd_restart_daemon() {
    [ "$(id -u)" = 0 ] || die "'restart-daemon' must run as root"
    check_state_path
    pid_alive "$DOCKER_PIDFILE" dockerd || die "dockerd is not running; run: scripts/testenv.sh up"
    # One restart at a time, whoever asks (dockerd is started with fd 9 closed).
    exec 9>"$STATE/restart-daemon.lock"
    flock 9
    local old
    old="$(pid_of "$DOCKER_PIDFILE")"
    stop_pid "$DOCKER_PIDFILE" dockerd 60
    rm -f "$DOCKER_SOCK"
    start_dockerd
    log "dockerd restarted (pid $old -> $(pid_of "$DOCKER_PIDFILE"))"
}

# status: exit 0 when everything runs, 1 otherwise
cmd_status() {
    local ok=0
    if pid_alive "$DOCKER_PIDFILE" dockerd && docker_answers; then
        echo "dockerd    running  pid $(pid_of "$DOCKER_PIDFILE")  unix://$DOCKER_SOCK"
    else
        echo "dockerd    stopped"
        ok=1
    fi
    if pid_alive "$REGISTRY_PIDFILE" docker-registry; then
        echo "registry   running  pid $(pid_of "$REGISTRY_PIDFILE")  $(sed -n 's/^  addr: //p' "$STATE/registry/config.yml" 2>/dev/null)"
    else
        echo "registry   stopped"
        ok=1
    fi
    if pid_alive "$GIT_PIDFILE" git-http-server.py; then
        local port
        port="$(tr '\0' '\n' <"/proc/$(pid_of "$GIT_PIDFILE")/cmdline" | sed -n '/^--port$/{n;p}')"
        echo "git-server running  pid $(pid_of "$GIT_PIDFILE")  http://127.0.0.1:$port"
    else
        echo "git-server stopped"
        ok=1
    fi
    return $ok
}

cmd_env() {
    cmd_status >/dev/null || die "the test environment is not (fully) running; run: scripts/testenv.sh up"
    [ -f "$ENV_FILE" ] || die "$ENV_FILE missing; run: scripts/testenv.sh up"
    cat "$ENV_FILE"
}

case "${1:-}" in
    up) cmd_up ;;
    down) cmd_down ;;
    status) cmd_status ;;
    env) cmd_env ;;
    restart-daemon) cmd_restart_daemon ;;
    new-repo)
        [ $# -eq 2 ] || die "usage: $0 new-repo NAME"
        new_repo "$2"
        ;;
    seed-demo)
        seed_demo
        ;;
    seed-images)
        [ "$(id -u)" = 0 ] || die "'seed-images' must run as root"
        cmd_status >/dev/null || die "the test environment is not (fully) running; run: scripts/testenv.sh up"
        seed_images
        ;;
    *)
        echo "usage: $0 up|down|status|env|restart-daemon|new-repo NAME|seed-demo|seed-images" >&2
        exit 2
        ;;
esac
