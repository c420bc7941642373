#!/usr/bin/env bash
# Runs warmpool's whole test suite on a fresh Debian machine: installs the
# real programs the interop tests start on 127.0.0.1 when they are missing,
# checks formatting, vet and go.mod, runs every test under the race detector
# (the root module and every submodule), builds every example and runs each
# fuzz target briefly. CI runs exactly this (.ci/run).
#
# Needs: Go 1.26; root (or the programs below already installed) and access
# to Debian's package mirror on a machine that lacks them; access to the Go
# module proxy on a machine without the modules in its cache. About 4
# minutes on 2 cores once the programs are installed.
#
# It writes nothing outside the checkout but Go's caches and its own mktemp
# directory (removed on exit); the tests' servers use their own temporary
# directories.
set -euo pipefail
cd "$(dirname "$0")/.."

# The programs the tests run, and the Debian package of each. A program is
# looked up on $PATH and in the sbin and lib directories where Debian puts
# daemons and helpers: a package is installed only when its program is
# missing.
declare -A PROGRAMS=(
	[nginx]=nginx-light
	[apache2]=apache2
	[htpasswd]=apache2-utils
	[squid]=squid
	[basic_ncsa_auth]=squid
	[microsocks]=microsocks
	[chromium]=chromium
	[redis-server]=redis-server
)
have() {
	command -v "$1" >/dev/null 2>&1 && return 0
	local d
	for d in /usr/sbin /sbin /usr/lib/squid; do
		[[ -x $d/$1 ]] && return 0
	done
	return 1
}
need=()
for prog in "${!PROGRAMS[@]}"; do
	if ! have "$prog"; then
		pkg=${PROGRAMS[$prog]}
		[[ " ${need[*]-} " == *" $pkg "* ]] || need+=("$pkg")
	fi
done
if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		echo "!! missing programs from packages: ${need[*]}; run as root to install them (their tests fail otherwise)" >&2
	else
		echo "== installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
		# The packages' own services are not wanted: the tests start
		# their own instances on 127.0.0.1.
		for s in nginx apache2 squid redis-server; do
			service "$s" stop >/dev/null 2>&1 || true
		done
	fi
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "== gofmt"
bad=$(gofmt -l .)
if [[ -n $bad ]]; then
	echo "gofmt needed on: $bad" >&2
	exit 1
fi

# Every module: the root and each submodule with its own go.mod.
modules=(. $(find . -mindepth 2 -name go.mod -not -path './.git/*' -exec dirname {} \; | sort))

echo "== .: go vet, go mod tidy -diff"
go vet ./...
go mod tidy -diff

echo "== build examples"
go build -o "$tmp/" ./examples/...

# -p 1: within a module, packages one at a time, so that the real servers
# one package starts do not compete with another package's tests. The
# submodules' tests run one module after another, alongside the root
# module's: two streams at most, as every test is proven stable with a busy
# loop holding one core.
# The second stream also vets each submodule first, and runs the root
# module's fuzz targets briefly at its end.
(
	sub=0
	for m in "${modules[@]:1}"; do
		log="$tmp/test-$(basename "$m").log"
		(cd "$m" && echo "go vet, go mod tidy -diff" && go vet ./... && go mod tidy -diff &&
			go test -race -count=1 -p 1 -timeout 10m ./...) >"$log" 2>&1 || { echo FAIL >>"$log"; sub=1; }
	done
	for f in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' ./*_test.go | sed 's/func //'); do
		if go test -run '^$' -fuzz "^${f}\$" -fuzztime 3s -parallel 1 . >>"$tmp/fuzz.log" 2>&1; then
			echo "fuzz $f: ok" >>"$tmp/fuzz.log"
		else
			echo "fuzz $f: FAIL" >>"$tmp/fuzz.log"
			sub=1
		fi
	done
	exit $sub
) &
subpid=$!
echo "== .: go test -race (submodules alongside, one at a time: ${modules[*]:1})"
rc=0
go test -race -count=1 -p 1 -timeout 10m ./... || rc=1
wait "$subpid" || rc=1
for m in "${modules[@]:1}"; do
	echo "== $m: go vet, go mod tidy -diff, go test -race"
	cat "$tmp/test-$(basename "$m").log"
done
echo "== fuzz (short)"
grep '^fuzz ' "$tmp/fuzz.log" || true
((rc == 0)) || { cat "$tmp/fuzz.log" >&2; exit 1; }
