#!/bin/sh
# imports.sh: the dependency rules of STYLE.md §1, enforced.
#   - unsafe and golang.org/x/sys/unix only in hypercall/ (and its
#     sub-packages) and in cowd/ files named *_linux.go;
#   - pools/ and cowd/ import neither xenctl nor hypercall;
#   - xenctl/ does not import cmd/, pools/ or cowd/.
set -eu
cd "$(dirname "$0")/.."
fail=0
for f in $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' | sed 's|^\./||'); do
	[ -f "$f" ] || continue
	case "$f" in
	hypercall/*|internal/xentest/cmd/*) continue ;;
	cowd/*_linux.go|cowd/*/*_linux.go|cowd/*_linux*_test.go|cowd/*/*_linux*_test.go) continue ;;
	esac
	if grep -Eq '^\s*(import\s+)?"(unsafe|golang.org/x/sys/unix)"' "$f"; then
		echo "imports.sh: $f imports unsafe or x/sys/unix (allowed only in hypercall/ and cowd/*_linux.go)"
		fail=1
	fi
	case "$f" in
	pools/*|cowd/*)
		if grep -Eq '"github.com/xentmem/xentmem/(xenctl|hypercall)' "$f"; then
			echo "imports.sh: $f imports xenctl or hypercall (pools/ and cowd/ take plain values)"
			fail=1
		fi ;;
	xenctl/*)
		if grep -Eq '"github.com/xentmem/xentmem/(cmd|pools|cowd)' "$f"; then
			echo "imports.sh: $f imports cmd, pools or cowd"
			fail=1
		fi ;;
	esac
done
exit $fail
