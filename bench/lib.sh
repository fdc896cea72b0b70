# Shared by bench/run, bench/ab and bench/budget (sourced, not run).

admin_token=bench-admin-token-0123456789abcdefghijklmnop
consumer=did:ishare:EU.NL.NTRNL-00000002

# need <command> <Debian package>: installs the package when the command is missing.
need() { command -v "$1" >/dev/null 2>&1 || { apt-get install -y -qq "$2" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "$2"; } >/dev/null; }; }

# port -> a free TCP port on loopback.
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# wait_ready <pid> <url> [poll seconds]: polls the URL until it answers; stops the script with a
# message if the process exits first (a server that cannot start must not hang the benchmark).
wait_ready() {
  until curl -sf -o /dev/null "$2"; do
    kill -0 "$1" 2>/dev/null || { echo "bench/$(basename "$0"): the server (pid $1) exited before $2 answered" >&2; exit 1; }
    sleep "${3:-0.01}"
  done
}

# start_nginx <work dir> <root dir> <file to wait for>: nginx serving the root statically (sendfile,
# one worker per core: the ceiling); sets nginx_port and nginx_pid and adds it to pids.
start_nginx() {
  local dir=$1/nginx
  nginx_port=$(port)
  mkdir -p "$dir"
  cat > "$dir/nginx.conf" <<CONF
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  sendfile on; tcp_nopush on; tcp_nodelay on;
  keepalive_requests 1000000;
  types { application/geo+json geojson; }
  client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir;
  server { listen 127.0.0.1:$nginx_port; root $2; }
}
CONF
  /usr/sbin/nginx -c "$dir/nginx.conf" -g 'daemon off;' &
  nginx_pid=$!
  pids+=("$nginx_pid")
  wait_ready "$nginx_pid" "http://127.0.0.1:$nginx_port/$3" 0.05
}

# consumer_token <sluis binary> <certs dir> <public port> <admin port> -> an access token: registers
# the bench consumer (group gemeenten) and has it sign a client assertion and exchange it.
consumer_token() {
  local assertion
  curl -sf -X POST "http://127.0.0.1:$4/admin/consumers" -H "Authorization: Bearer $admin_token" \
    -H 'content-type: application/json' \
    -d "{\"party_id\": \"$consumer\", \"name\": \"bench\", \"groups\": [\"urn:sluis:group:gemeenten\"]}" >/dev/null
  assertion=$("$1" assertion --key "$2/consumer.key" --cert "$2/consumer.pem" \
    --cert "$2/trust/dev-ca.pem" --client-id "$consumer")
  curl -sf "http://127.0.0.1:$3/connect/token" -d grant_type=client_credentials -d scope=iSHARE \
    -d client_id="$consumer" -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer \
    -d client_assertion="$assertion" | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}

# build_floor: builds bench/floor.patch applied to a worktree of HEAD (target/floor-src) into
# target/floor, and sets floor_bin. The worktree is removed again when the build is done.
build_floor() {
  local src=$PWD/target/floor-src here=$PWD
  git worktree remove --force "$src" 2>/dev/null || rm -rf "$src"
  git worktree prune
  git worktree add --quiet --detach "$src" HEAD
  if ! (cd "$src" && git apply "$here/bench/floor.patch"); then
    git worktree remove --force "$src"
    echo "bench: bench/floor.patch no longer applies to src/audit/sqlite_writer.rs; update it" >&2
    return 1
  fi
  echo "bench: building the floor build (bench/floor.patch) into target/floor ..." >&2
  (cd "$src" && cargo build --release --quiet --bin sluis --target-dir "$here/target/floor") ||
    { git worktree remove --force "$src"; return 1; }
  git worktree remove --force "$src"
  floor_bin=$here/target/floor/release/sluis
}
