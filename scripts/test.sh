#!/usr/bin/env bash
# Runs warmpool's whole test suite on a fresh Debian machine: installs the
# real servers and proxies the interop tests use (when missing), checks
# formatting, vet and go.mod, runs every test under the race detector and
# builds every example. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages of the real programs the tests start on 127.0.0.1 (nginx,
# Apache httpd, squid, microsocks) and of the browser that renders the
# dashboard (chromium).
PKGS=(nginx-light apache2 squid microsocks chromium)
need=()
for p in "${PKGS[@]}"; do
	dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
done
if ((${#need[@]})); then
	if [[ $(id -u) -eq 0 ]]; then
		echo "== installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
		# The packages' own services are not wanted: the tests start
		# their own instances on 127.0.0.1.
		for s in nginx apache2 squid; do
			service "$s" stop >/dev/null 2>&1 || true
		done
	else
		echo "!! missing packages ${need[*]} and not root: the interop tests will fail loudly" >&2
	fi
fi

echo "== gofmt"
bad=$(gofmt -l .)
if [[ -n $bad ]]; then
	echo "gofmt needed on: $bad" >&2
	exit 1
fi

echo "== go vet"
go vet ./...

echo "== go mod tidy"
cp go.mod /tmp/warmpool.go.mod.bak
cp go.sum /tmp/warmpool.go.sum.bak
go mod tidy
if ! diff -q go.mod /tmp/warmpool.go.mod.bak >/dev/null || ! diff -q go.sum /tmp/warmpool.go.sum.bak >/dev/null; then
	echo "go.mod/go.sum are not tidy: run go mod tidy" >&2
	diff go.mod /tmp/warmpool.go.mod.bak || true
	cp /tmp/warmpool.go.mod.bak go.mod
	cp /tmp/warmpool.go.sum.bak go.sum
	exit 1
fi

echo "== build examples"
go build -o /dev/null ./examples/...

echo "== go test -race"
# -p 1: packages one at a time, so that timing-sensitive tests (pre-warming
# against simulated round trips) do not compete with the real servers
# other packages start.
go test -race -count=1 -p 1 -timeout 15m ./...

echo "== prometheus submodule"
(
	cd prometheus
	go vet ./...
	go mod tidy -diff
	go test -race -count=1 ./...
)

echo "== fuzz (short)"
for f in $(grep -ho 'func Fuzz[A-Za-z0-9_]*' ./*_test.go | sed 's/func //'); do
	go test -run '^$' -fuzz "^${f}\$" -fuzztime 5s . >/dev/null
	echo "fuzz $f: ok"
done
